"""Checks that a structure read from a user's file describes a physical crystal, each problem
with its own message, before any calculation is spent on it."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Element, Structure

from discovery.domain.generation.filters import min_interatomic_distance

# Largest cell accepted from a file: a candidate or reference beyond this is a mistake (a
# slab, a supercell for another purpose), and relaxing it would take hours per step.
MAX_FILE_SITES = 2000
# Closer than this, two atoms are the same atom written twice (or a unit mix-up).
MIN_SEPARATION = 0.5
# Volume per atom below this (Å^3) is no crystal; hydrogen-rich solids sit near 5.
MIN_VOLUME_PER_ATOM = 1.0


def structure_problem(structure: Structure) -> str | None:
    """Why `structure` cannot be used, or None. Checks run cheapest first, so a 10,000-atom
    cell is refused before any distance is computed."""
    if len(structure) == 0:
        return "no sites"
    if len(structure) > MAX_FILE_SITES:
        return f"{len(structure)} sites; at most {MAX_FILE_SITES} are accepted"
    unknown = sorted(
        {
            str(sp)
            for sp in structure.composition
            if not Element.is_valid_symbol(getattr(sp, "symbol", str(sp)))
        }
    )
    if unknown:
        return f"unknown element(s) {', '.join(unknown)}"
    matrix = structure.lattice.matrix
    if not (np.isfinite(matrix).all() and np.isfinite(structure.frac_coords).all()):
        return "non-finite (NaN or infinite) lattice or coordinates"
    volume = abs(float(np.linalg.det(matrix)))
    if volume / len(structure) < MIN_VOLUME_PER_ATOM:
        return f"cell volume {volume:.3g} Å^3 is degenerate for {len(structure)} site(s)"
    closest = min_interatomic_distance(structure)
    if closest < MIN_SEPARATION:
        return f"atoms overlap ({closest:.2f} Å apart; minimum {MIN_SEPARATION} Å)"
    return None
