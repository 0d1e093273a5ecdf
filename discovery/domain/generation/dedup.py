"""De-duplication with pymatgen's StructureMatcher, compared only within symmetry buckets.

A bucket key has three parts. The first two are exact invariants of the matcher used here
(`primitive_cell=True`, `attempt_supercell=False`): it refuses structures whose reduced
formulas differ, and it reduces both structures to their primitive cells with the same
routine this module uses and refuses different site counts. The third, the space group, is
a heuristic: a copy displaced by less than the matcher's tolerance (up to ~0.3 of the
mean interatomic spacing) can lose symmetry at any symprec small enough to be useful. So a
structure is compared first with its own space-group bucket (where nearly every duplicate
is found) and only then, when nothing matched there, with the other space groups under the
same formula and primitive size: recall stays that of the exact invariants, and the
symmetry key only orders the work.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from discovery.domain.generation.symmetry import space_group_number

log = logging.getLogger(__name__)

SEP = "|"
# Å. The space group of a key is found at this tolerance. In benchmarks/generation.py's scan
# (planted copies up to 0.08 Å off, supercells, basis changes) 0.2 put 99.7 % of copies in
# their original's bucket at the first try, against 87 % at 0.1 and 77 % at 0.01: fewer
# fallback comparisons, the same recall (the fallback guarantees it either way).
KEY_SYMPREC = 0.2


@dataclass(frozen=True)
class BucketKey:
    formula: str  # reduced formula
    nprim: int  # sites in the matcher's primitive cell
    spacegroup: int  # 0 when no group could be found

    def __str__(self) -> str:
        return f"{self.formula}{SEP}{self.nprim}{SEP}{self.spacegroup}"

    @property
    def coarse(self) -> str:
        """The exact-invariant prefix shared by every space group of this formula and size."""
        return coarse_prefix(self.formula, self.nprim)

    @classmethod
    def parse(cls, text: str) -> BucketKey | None:
        """The key stored in `candidates.dedup_key`; None for a key written before buckets
        had three parts (the reduced formula alone)."""
        parts = text.split(SEP)
        if len(parts) != 3:
            return None
        return cls(parts[0], int(parts[1]), int(parts[2]))


def coarse_prefix(formula: str, nprim: int) -> str:
    """The leading part of every bucket key of this formula and primitive size, for looking up
    buckets whose space group differs (the fallback comparison)."""
    return f"{formula}{SEP}{nprim}{SEP}"


def reduced_structure(structure: Structure) -> Structure:
    """Niggli cell, then primitive cell: the exact reduction StructureMatcher applies, so the
    site count here is the one the matcher compares."""
    return StructureMatcher._get_reduced_structure(structure, primitive_cell=True, niggli=True)


def bucket_key(
    structure: Structure, reduced: Structure | None = None, symprec: float = KEY_SYMPREC
) -> BucketKey:
    """The bucket a structure is compared within: reduced formula, sites in the matcher's
    primitive cell and space group. Pass `reduced` when the caller already has it."""
    reduced = reduced if reduced is not None else reduced_structure(structure)
    return BucketKey(
        structure.composition.reduced_formula,
        len(reduced),
        space_group_number(reduced, symprec),
    )


def dedup_key(structure: Structure) -> str:
    """The bucket key as the store keeps it."""
    return str(bucket_key(structure))


class _Entry:
    """A remembered structure; its reduced cell is computed on first comparison only."""

    __slots__ = ("_reduced", "structure")

    def __init__(self, structure: Structure, reduced: Structure | None = None):
        self.structure = structure
        self._reduced = reduced

    @property
    def reduced(self) -> Structure:
        if self._reduced is None:
            self._reduced = reduced_structure(self.structure)
        return self._reduced


# (formula, nprim) -> stored (key text, structure) pairs of that coarse bucket
Loader = Callable[[str, int], Iterable[tuple[str, Structure]]]


class Deduplicator:
    """Remembers structures and tells whether a new one matches any of them.

    With a `loader`, a coarse bucket (formula + primitive size) is filled from the store the
    first time a structure falls into it, so nothing outside the buckets in use is read.
    """

    def __init__(
        self,
        ltol: float = 0.2,
        stol: float = 0.3,
        angle_tol: float = 5.0,
        loader: Loader | None = None,
        symmetry_fallback: bool = True,
        symprec: float = KEY_SYMPREC,
    ):
        # primitive_cell=True and attempt_supercell=False make the site count of the primitive
        # cell an exact invariant of a match; the bucket keys rely on that.
        self.matcher = StructureMatcher(
            ltol=ltol,
            stol=stol,
            angle_tol=angle_tol,
            primitive_cell=True,
            scale=True,
            attempt_supercell=False,
        )
        self.loader = loader
        self.symmetry_fallback = symmetry_fallback
        # Keys of stored rows were found at KEY_SYMPREC; another value only changes which
        # space-group bucket is tried first, never what is found.
        self.symprec = symprec
        self._buckets: dict[str, dict[int, list[_Entry]]] = defaultdict(lambda: defaultdict(list))
        self._loaded: set[str] = set()
        self.fits = 0  # StructureMatcher.fit calls made, for benchmarks and logs

    def _bucket(self, key: BucketKey) -> dict[int, list[_Entry]]:
        coarse = key.coarse
        if self.loader is not None and coarse not in self._loaded:
            self._loaded.add(coarse)
            for text, stored in self.loader(key.formula, key.nprim):
                stored_key = BucketKey.parse(text) or bucket_key(stored)
                self._buckets[stored_key.coarse][stored_key.spacegroup].append(_Entry(stored))
        return self._buckets[coarse]

    def _fit(self, reduced: Structure, entry: _Entry) -> bool:
        self.fits += 1
        return self.matcher.fit(reduced, entry.reduced, skip_structure_reduction=True)

    def find(self, structure: Structure, key: BucketKey | None = None) -> Structure | None:
        """The first remembered structure that matches, or None."""
        reduced = reduced_structure(structure)
        key = key or bucket_key(structure, reduced, self.symprec)
        return self._find(reduced, key)

    def _find(self, reduced: Structure, key: BucketKey) -> Structure | None:
        bucket = self._bucket(key)
        for entry in bucket.get(key.spacegroup, ()):
            if self._fit(reduced, entry):
                return entry.structure
        if not self.symmetry_fallback:
            return None
        for group, entries in bucket.items():
            if group == key.spacegroup:
                continue
            for entry in entries:
                if self._fit(reduced, entry):
                    return entry.structure
        return None

    def add(self, structure: Structure) -> BucketKey:
        reduced = reduced_structure(structure)
        key = bucket_key(structure, reduced, self.symprec)
        self._bucket(key)[key.spacegroup].append(_Entry(structure, reduced))
        return key

    def match_or_add(self, structure: Structure) -> Structure | None:
        """The remembered structure this one matches; or None, and it is remembered."""
        reduced = reduced_structure(structure)
        key = bucket_key(structure, reduced, self.symprec)
        match = self._find(reduced, key)
        if match is None:
            self._bucket(key)[key.spacegroup].append(_Entry(structure, reduced))
        return match

    def add_if_new(self, structure: Structure) -> bool:
        return self.match_or_add(structure) is None

    def __len__(self) -> int:
        return sum(len(e) for b in self._buckets.values() for e in b.values())
