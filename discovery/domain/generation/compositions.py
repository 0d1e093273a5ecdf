"""Stoichiometries of a chemical system, optionally filtered for charge balance with smact."""

from __future__ import annotations

import itertools
import math

from pymatgen.core import Composition
from smact.screening import smact_validity


def enumerate_compositions(
    elements: tuple[str, ...],
    max_atoms: int,
    charge_balanced: bool,
    include_subsystems: bool = True,
) -> list[Composition]:
    """Reduced formulas with every element present, at most `max_atoms` atoms per formula unit.

    Sorted by (number of elements, atoms, formula) so the order never depends on hashing.
    """
    sizes = range(2, len(elements) + 1) if include_subsystems else [len(elements)]
    out: list[Composition] = []
    for k in sizes:
        for subset in itertools.combinations(sorted(elements), k):
            for counts in itertools.product(range(1, max_atoms + 1), repeat=k):
                if sum(counts) > max_atoms or math.gcd(*counts) != 1:
                    continue
                comp = Composition(dict(zip(subset, counts, strict=True)))
                if charge_balanced and not smact_validity(comp):
                    continue
                out.append(comp)
    return sorted(out, key=lambda c: (len(c), c.num_atoms, c.reduced_formula))
