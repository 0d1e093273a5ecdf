"""De-duplication with pymatgen's StructureMatcher, compared only within formula buckets."""

from __future__ import annotations

from collections import defaultdict

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure


def dedup_key(structure: Structure) -> str:
    # The reduced formula is invariant under everything StructureMatcher treats as equal
    # (supercells, scaling, symmetry), so structures in different buckets never match.
    return structure.composition.reduced_formula


class Deduplicator:
    """Remembers structures seen so far and tells whether a new one matches any of them."""

    def __init__(self, matcher: StructureMatcher | None = None):
        self.matcher = matcher or StructureMatcher(primitive_cell=True, scale=True)
        self._buckets: dict[str, list[Structure]] = defaultdict(list)

    def add(self, structure: Structure) -> None:
        self._buckets[dedup_key(structure)].append(structure)

    def find(self, structure: Structure) -> int | None:
        """Index within its bucket of the first matching structure, or None."""
        for i, other in enumerate(self._buckets.get(dedup_key(structure), [])):
            if self.matcher.fit(structure, other):
                return i
        return None

    def add_if_new(self, structure: Structure) -> bool:
        if self.find(structure) is not None:
            return False
        self.add(structure)
        return True

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())
