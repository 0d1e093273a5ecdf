"""Novelty of a structure against every known structure: known, a new polymorph of a known
composition, or novel.

Matching is pymatgen's StructureMatcher with the tolerances of generation's de-duplication
(`discovery.domain.generation.dedup`: ltol 0.2, stol 0.3, angle_tol 5°, primitive cells,
volumes scaled, no supercells), comparing elements rather than species: a CIF's Mn2+ is the
database's Mn, and magnetic moments are ignored. Against 10^5 known structures it stays fast
by comparing only where a match is possible or plausible:

1. *Reduced formula* (exact): the matcher refuses structures whose reduced formulas differ,
   so a structure is only compared within its formula's bucket, a dict lookup.
2. *Sites in the primitive cell* (exact for these settings): computed lazily, the first time
   a known structure is compared, and cached.
3. *Volume per atom* (a heuristic, the cheap fingerprint): the matcher scales volumes, so
   volume is no invariant; but a relaxed candidate and a database structure of the same
   phase differ by a few per cent (PBE against a universal potential, ±5 % at worst), so
   known structures whose volume per atom differs by more than `volume_tolerance` (default
   25 %, lenient) are not compared, and the rest are compared closest volume first, so that
   a match is usually the first fit made.

The space group is deliberately *not* a filter: relaxation raises or lowers it (a rattled
cubic cell relaxes to a subgroup, a distorted one snaps back), and a space-group key would
call such a candidate a new polymorph of its own known phase.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from pymatgen.analysis.structure_matcher import ElementComparator, StructureMatcher
from pymatgen.core import Structure

from discovery.domain.known.phase import KnownPhase

Status = Literal["novel", "known", "new polymorph"]
NOVEL: Status = "novel"
KNOWN: Status = "known"
NEW_POLYMORPH: Status = "new polymorph"

# Largest accepted relative difference of volume per atom between two structures compared.
VOLUME_TOLERANCE = 0.25


@dataclass(frozen=True)
class Novelty:
    """What a structure is against the known ones: `known` (it matches `known_id`), a `new
    polymorph` (its reduced formula is known, no structure of it matches) or `novel`;
    `known_ids_of_formula` lists every known phase of its reduced formula."""

    status: Status
    known_id: str | None = None
    known_ids_of_formula: tuple[str, ...] = ()


def structure_matcher() -> StructureMatcher:
    """The matcher of novelty and merging: generation's de-duplication tolerances, elements
    compared (oxidation states ignored)."""
    return StructureMatcher(
        ltol=0.2,
        stol=0.3,
        angle_tol=5.0,
        primitive_cell=True,
        scale=True,
        attempt_supercell=False,
        comparator=ElementComparator(),
    )


def _reduce(structure: Structure) -> Structure:
    # The reduction the matcher applies itself (Niggli, then primitive); done once per
    # structure here, and the fit told to skip it.
    return StructureMatcher._get_reduced_structure(structure, primitive_cell=True, niggli=True)


class _Known:
    """One distinct known structure (phases sharing a Structure object share it), with its
    volume per atom and, once compared, its reduced cell."""

    __slots__ = ("_reduced", "phases", "structure", "volume_per_atom")

    def __init__(self, structure: Structure, volume_per_atom: float):
        self.structure = structure
        self.volume_per_atom = volume_per_atom
        self.phases: list[KnownPhase] = []
        self._reduced: Structure | None = None

    @property
    def reduced(self) -> Structure:
        if self._reduced is None:
            self._reduced = _reduce(self.structure)
        return self._reduced


class NoveltyIndex:
    """Known structures bucketed by reduced formula, for telling whether a structure is one
    of them. Building it costs one composition per distinct Structure object; primitive cells
    are found only for the buckets that queries reach."""

    def __init__(
        self,
        phases: Iterable[KnownPhase] = (),
        volume_tolerance: float | None = VOLUME_TOLERANCE,
    ):
        self.matcher = structure_matcher()
        self.volume_tolerance = volume_tolerance
        self._buckets: dict[str, list[_Known]] = {}
        self._by_object: dict[int, _Known] = {}
        self.fits = 0  # StructureMatcher.fit calls made, for benchmarks and logs
        for phase in phases:
            self.add(phase)

    def __len__(self) -> int:
        return sum(len(k.phases) for bucket in self._buckets.values() for k in bucket)

    def add(self, phase: KnownPhase) -> None:
        """Remember one more known phase (no comparison is made)."""
        known = self._by_object.get(id(phase.structure))
        if known is None:
            structure = phase.structure
            known = _Known(structure, structure.volume / len(structure))
            self._by_object[id(structure)] = known
            formula = structure.composition.reduced_formula
            self._buckets.setdefault(formula, []).append(known)
        known.phases.append(phase)

    def phases_of_formula(self, formula: str) -> tuple[KnownPhase, ...]:
        """Every known phase of a reduced formula, in the order they were added."""
        return tuple(p for known in self._buckets.get(formula, ()) for p in known.phases)

    def _candidates(self, structure: Structure, formula: str) -> Iterator[_Known]:
        bucket = self._buckets.get(formula, ())
        volume = structure.volume / len(structure)
        ranked = sorted(bucket, key=lambda k: abs(k.volume_per_atom - volume))
        for known in ranked:
            if self.volume_tolerance is not None:
                ratio = known.volume_per_atom / volume
                if abs(ratio - 1.0) > self.volume_tolerance:
                    continue
            yield known

    def match(self, structure: Structure) -> KnownPhase | None:
        """The known phase whose structure matches, or None. Where several do, the one closest
        in volume per atom; of phases sharing one Structure object, the first added."""
        formula = structure.composition.reduced_formula
        if formula not in self._buckets:
            return None
        reduced = None  # found at the first comparison: often none is made
        for known in self._candidates(structure, formula):
            if reduced is None:
                reduced = _reduce(structure)
            if len(known.reduced) != len(reduced):
                continue
            self.fits += 1
            if self.matcher.fit(reduced, known.reduced, skip_structure_reduction=True):
                return known.phases[0]
        return None

    def classify(self, structure: Structure) -> Novelty:
        """Whether `structure` is known, a new polymorph of a known composition, or novel."""
        formula = structure.composition.reduced_formula
        same_formula = tuple(p.id for p in self.phases_of_formula(formula))
        if not same_formula:
            return Novelty(NOVEL)
        match = self.match(structure)
        if match is not None:
            return Novelty(KNOWN, match.id, same_formula)
        return Novelty(NEW_POLYMORPH, None, same_formula)
