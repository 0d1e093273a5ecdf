"""Symmetry-aware partial substitution (SAPS, as in GNoME): part of one orbit of
symmetry-equivalent sites of a parent takes another element.

Subsets of an orbit that a symmetry operation of the parent maps onto each other give the
same crystal, so only one subset per class under the parent's site permutation group is
kept (the lexicographically smallest image). Classes that are still equal as crystals (by
a symmetry of a larger cell) are left to the de-duplicator.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np
from pymatgen.analysis.structure_prediction.substitution_probability import (
    SubstitutionProbability,
)
from pymatgen.core import Composition, Element, Species, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from discovery.domain.generation.symmetry import symmetry
from discovery.domain.records import CandidateRecord

log = logging.getLogger(__name__)

MAX_SUBSETS = 4096  # subsets of one orbit enumerated before the orbit is skipped


@dataclass(frozen=True)
class Parent:
    """A structure partial substitution starts from, and where it came from."""

    name: str
    structure: Structure  # elements only; oxidation states are guessed here
    detail: dict


def site_permutations(structure: Structure, symprec: float = 0.1) -> np.ndarray:
    """(n_ops, n_sites): operation g sends site i to site perm[g, i]."""
    sym = symmetry(structure, symprec)
    frac = structure.frac_coords
    labels = np.array([str(sp) for sp in structure.species])
    perms = []
    for rot, trans in zip(sym.rotations, sym.translations, strict=True):
        image = frac @ rot.T + trans
        diff = image[:, None, :] - frac[None, :, :]
        diff -= np.round(diff)
        dist = np.linalg.norm(diff @ structure.lattice.matrix, axis=2)
        perm = dist.argmin(axis=1)
        # an operation found at a loose tolerance that does not map the cell onto itself
        # site by site (or mixes species) is no permutation and is dropped
        if len(set(perm)) == len(perm) and (labels[perm] == labels).all():
            perms.append(perm)
    return np.array(perms, dtype=int)


def orbits(structure: Structure, symprec: float = 0.1) -> list[list[int]]:
    """Symmetry-equivalent site indices, each orbit sorted, orbits by first index."""
    groups: dict[int, list[int]] = {}
    for i, rep in enumerate(symmetry(structure, symprec).orbits):
        groups.setdefault(rep, []).append(i)
    return sorted(groups.values())


def distinct_subsets(orbit: list[int], k: int, perms: np.ndarray) -> list[tuple[int, ...]]:
    """One k-subset of `orbit` per class of subsets related by the permutations."""
    seen: set[tuple[int, ...]] = set()
    out = []
    for subset in itertools.combinations(orbit, k):
        canonical = min(tuple(sorted(p[list(subset)])) for p in perms)
        if canonical not in seen:
            seen.add(canonical)
            out.append(canonical)
    return out


@cache
def _table() -> SubstitutionProbability:
    return SubstitutionProbability()


@cache
def _oxidation_guess(formula: str) -> dict[str, float] | None:
    """Average oxidation state per element, or None when no charge-neutral guess exists."""
    guesses = Composition(formula).oxi_state_guesses(max_sites=-20)
    return dict(guesses[0]) if guesses else None


def _ion(element: str, oxi: float) -> Species | None:
    """The table's ion of this element nearest to an (average) oxidation state."""
    ions = [s for s in _table().species if s.symbol == element]
    if not ions:
        return None
    return min(ions, key=lambda s: abs((s.oxi_state or 0.0) - oxi))


def _probability(old: str, new: str, parent_oxi: dict[str, float] | None) -> float:
    """P(new replaces old) for an ionic parent (the new ion has the old one's charge sign);
    1 for metals; 0 when it makes no sense."""
    if parent_oxi is None or all(abs(v) < 1e-6 for v in parent_oxi.values()):
        both_metals = all(Element(e).is_metal or Element(e).is_metalloid for e in (old, new))
        return 1.0 if both_metals else 0.0
    old_ion = _ion(old, parent_oxi[old])
    if old_ion is None:
        return 0.0
    sign = np.sign(old_ion.oxi_state or 0.0)
    best = 0.0
    for ion in _table().species:
        if ion.symbol != new or np.sign(ion.oxi_state or 0.0) != sign:
            continue
        try:
            best = max(best, float(_table().cond_prob(ion, old_ion)))
        except ZeroDivisionError:
            continue
    return best


def _cells(structure: Structure, max_sites: int) -> list[Structure]:
    """The primitive and conventional standard cells that fit in `max_sites`: orbits in a
    primitive cell are often a single site, the conventional cell gives fractions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sga = SpacegroupAnalyzer(structure, symprec=0.1)
        cells = [sga.get_primitive_standard_structure(), sga.get_conventional_standard_structure()]
    out: list[Structure] = []
    for cell in cells:
        if len(cell) <= max_sites and all(len(cell) != len(c) for c in out):
            out.append(cell)
    return out


def partial_substitutions(
    parent: Parent,
    elements: tuple[str, ...],
    threshold: float,
    max_sites: int,
    max_orderings: int,
) -> list[tuple[float, CandidateRecord]]:
    """Every symmetry-distinct partial substitution of one orbit of `parent` by another element
    of `elements`, with the substitution probability."""
    parent_formula = parent.structure.composition.reduced_formula
    parent_oxi = _oxidation_guess(parent_formula)
    out: list[tuple[float, CandidateRecord]] = []
    for cell in _cells(parent.structure, max_sites):
        perms = site_permutations(cell)
        for orbit in orbits(cell):
            old = cell[orbit[0]].specie.symbol
            for new in elements:
                if new == old:
                    continue
                p = _probability(old, new, parent_oxi)
                if p < threshold or p == 0:
                    continue
                for k in range(1, len(orbit)):
                    if math.comb(len(orbit), k) > MAX_SUBSETS:
                        continue
                    for subset in distinct_subsets(orbit, k, perms)[:max_orderings]:
                        rec = _substituted(cell, subset, new, parent, old, len(orbit))
                        if (
                            parent_oxi is not None
                            and _oxidation_guess(rec.structure.composition.reduced_formula) is None
                        ):
                            continue  # no charge-neutral assignment left: not a compound
                        out.append((p, rec))
    return out


def _substituted(
    cell: Structure, subset: tuple[int, ...], new: str, parent: Parent, old: str, size: int
) -> CandidateRecord:
    s = cell.copy()
    for i in subset:
        s.replace(i, new)
    # the volume is the parent's; relaxation adjusts it, and one swapped orbit changes little
    detail = {
        "parent": parent.name,
        "parent_detail": parent.detail,
        "replace": old,
        "by": new,
        "sites": [int(i) for i in subset],
        "fraction": f"{len(subset)}/{size}",
        "cell_sites": len(cell),
    }
    return CandidateRecord(s, "partial", parent.name, detail)


class PartialSubstitutionGenerator:
    """Yields partial substitutions of its parents, likely ones first (seeded)."""

    name = "partial"

    def __init__(
        self,
        parents: list[Parent],
        elements: tuple[str, ...],
        threshold: float,
        max_parent_sites: int,
        max_orderings: int,
    ):
        self.parents = parents
        self.elements = elements
        self.threshold = threshold
        self.max_parent_sites = max_parent_sites
        self.max_orderings = max_orderings

    def generate(self, rng: np.random.Generator) -> Iterator[CandidateRecord]:
        order = rng.permutation(len(self.parents))
        # Parents in a seeded order, each expanded only when reached: expanding all of them
        # up front would cost more than a round's budget usually needs.
        for i in order:
            parent = self.parents[int(i)]
            pool = partial_substitutions(
                parent, self.elements, self.threshold, self.max_parent_sites, self.max_orderings
            )
            if not pool:
                continue
            weights = np.array([max(p, 1e-12) for p, _ in pool])
            keys = rng.random(len(pool)) ** (1.0 / weights)
            for j in np.argsort(-keys):
                yield pool[int(j)][1]
