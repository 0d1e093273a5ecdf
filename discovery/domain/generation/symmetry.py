"""Space groups, site orbits and symmetry operations of a structure, found with moyopy."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import moyopy
import numpy as np
from pymatgen.core import Structure

log = logging.getLogger(__name__)
# moyopy logs a warning for every cell it has to symmetrise by more than a hair and for
# every supercell whose operations it trims; generated structures do both all the time.
logging.getLogger("moyo").setLevel(logging.ERROR)

# Å. Loose enough that unrelaxed generated structures and relaxation noise keep their group;
# the same value the store uses for its `spacegroup` column.
SYMPREC = 0.1


@dataclass(frozen=True)
class Symmetry:
    """What moyopy found for one structure (sites in the structure's own order)."""

    number: int
    orbits: tuple[int, ...]  # site i is equivalent to site orbits[i]
    rotations: np.ndarray  # (n_ops, 3, 3) integer, fractional coordinates of the cell given
    translations: np.ndarray  # (n_ops, 3)


def _cell(structure: Structure) -> moyopy.Cell:
    # Species, not elements: a site's oxidation state distinguishes it (Fe2+ vs Fe3+).
    labels = {sp: i + 1 for i, sp in enumerate(sorted({str(s) for s in structure.species}))}
    numbers = [labels[str(s)] for s in structure.species]
    return moyopy.Cell(structure.lattice.matrix.tolist(), structure.frac_coords.tolist(), numbers)


def symmetry(structure: Structure, symprec: float = SYMPREC) -> Symmetry:
    """Space group number, site orbits and symmetry operations of `structure` by moyopy, at
    tolerance `symprec` (Å)."""
    data = moyopy.MoyoDataset(_cell(structure), symprec=symprec)
    ops = data.operations
    return Symmetry(
        int(data.number),
        tuple(int(o) for o in data.orbits),
        np.asarray(ops.rotations, dtype=int),
        np.asarray(ops.translations, dtype=float),
    )


def space_group_number(structure: Structure, symprec: float = SYMPREC) -> int:
    """The space group number, or 0 when moyopy cannot decide (an unusable, distorted cell)."""
    try:
        return int(moyopy.MoyoDataset(_cell(structure), symprec=symprec).number)
    except Exception as err:  # moyopy raises on cells it cannot standardise
        log.debug("no space group for %s: %s", structure.formula, err)
        return 0
