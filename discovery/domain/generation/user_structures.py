"""Structures the user supplies: files or folders of CIF, POSCAR, pymatgen JSON or extxyz.

They serve as extra parents for substitution and as a "known" set that candidates must not
repeat. Every problem names the file it came from.
"""

from __future__ import annotations

import json
import logging
import warnings
from functools import cache
from pathlib import Path

from pymatgen.core import Structure

from discovery.domain.generation.structure_checks import structure_problem

log = logging.getLogger(__name__)

_SUFFIXES = {".cif", ".json", ".vasp", ".poscar", ".xyz", ".extxyz"}
_POSCAR_NAMES = ("POSCAR", "CONTCAR")


class StructureFileError(ValueError):
    """A user structure file that cannot be used; the message names the file."""


_COMPRESSED = {".gz", ".bz2", ".xz"}


def _is_structure_file(path: Path) -> bool:
    if path.suffix.lower() in _COMPRESSED:  # esseneite.cif.gz: pymatgen reads it as it is
        path = path.with_suffix("")
        if path.suffix.lower() in (".xyz", ".extxyz"):
            return False
    return path.suffix.lower() in _SUFFIXES or path.name.upper().startswith(_POSCAR_NAMES)


def structure_files(spec: str | Path) -> list[Path]:
    """The structure files a path names: the file itself, or a folder's files (sorted, not
    recursive, other files ignored)."""
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and _is_structure_file(p))
        if not files:
            raise StructureFileError(f"{path}: no CIF, POSCAR, JSON or extxyz files in folder")
        return files
    if path.is_file():
        return [path]
    raise StructureFileError(f"{path}: no such file or folder")


def _read(path: Path) -> Structure:
    suffix = path.suffix.lower()
    with warnings.catch_warnings():
        # CIF parsing warns about every rounded occupancy; the checks below decide instead
        warnings.simplefilter("ignore")
        if suffix in (".xyz", ".extxyz"):
            from ase.io import read
            from pymatgen.io.ase import AseAtomsAdaptor

            atoms = read(path, format="extxyz")  # the last frame of a trajectory
            assert not isinstance(atoms, list)  # a list only for a slice index
            if not atoms.pbc.all():
                raise ValueError("extxyz without a periodic cell (Lattice=... pbc=...)")
            return AseAtomsAdaptor.get_structure(atoms)
        if suffix == ".json":
            return Structure.from_dict(json.loads(path.read_text()))
        if suffix == ".cif":
            return Structure.from_file(path, primitive=False)
        return Structure.from_file(path)


def order_structure(structure: Structure, max_cells: int = 8) -> Structure:
    """The lowest-Ewald-energy ordering of a partially occupied structure, in the smallest
    supercell (along a) where every species count is whole."""
    from pymatgen.transformations.standard_transformations import (
        OrderDisorderedStructureTransformation,
    )

    for n in range(1, max_cells + 1):
        counts = (structure.composition * n).values()
        if any(abs(c - round(c)) > 1e-3 for c in counts):
            continue
        s = structure * (n, 1, 1)
        if not all(hasattr(sp, "oxi_state") for sp in s.composition):
            # The Ewald ranking needs charges; an intermetallic gets zeros, and then every
            # ordering ties and the first one is taken.
            guesses = s.composition.oxi_state_guesses(max_sites=-20)
            states = guesses[0] if guesses else {el.symbol: 0 for el in s.composition}
            s.add_oxidation_state_by_element({k: round(v) for k, v in states.items()})
        ordered = OrderDisorderedStructureTransformation().apply_transformation(s)
        # One structure: return_ranked_list is off.
        assert isinstance(ordered, Structure)
        ordered.remove_oxidation_states()
        return ordered
    raise ValueError(f"occupancies need a supercell larger than {max_cells} cells to order")


def read_structure_file(path: Path) -> Structure:
    """The structure in one file, checked to describe a physical crystal (it may be partially
    occupied).

    Raises:
        StructureFileError: the file cannot be parsed or its structure is unphysical; the
            message names the file.
    """
    try:
        structure = _read(path)
    except Exception as err:
        raise StructureFileError(f"{path}: cannot parse structure: {err}") from None
    problem = structure_problem(structure)
    if problem is not None:
        raise StructureFileError(f"{path}: {problem}")
    return structure


@cache
def _load_file(path: Path, order_disordered: bool) -> Structure:
    structure = read_structure_file(path)
    if not structure.is_ordered:
        if not order_disordered:
            raise StructureFileError(
                f"{path}: partial occupancy; order it first or set "
                "generation.order_disordered: true"
            )
        try:
            structure = order_structure(structure)
        except Exception as err:
            raise StructureFileError(f"{path}: cannot order partial occupancy: {err}") from None
        log.info("%s: ordered partial occupancy into %d sites", path.name, len(structure))
    return structure


def load_structures(
    specs: list[str], order_disordered: bool = False
) -> list[tuple[str, Structure]]:
    """(file name, structure) for every file the specs name; copies, so callers may edit."""
    out: list[tuple[str, Structure]] = []
    for spec in specs:
        for path in structure_files(spec):
            out.append((path.name, _load_file(path.resolve(), order_disordered).copy()))
    return out
