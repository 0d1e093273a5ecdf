"""Cheap sanity filters applied to every generated structure before it is stored."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure


def min_interatomic_distance(structure: Structure) -> float:
    """Shortest distance between any two sites, periodic images included."""
    if len(structure) == 1:
        return float(min(structure.lattice.abc))
    dm = structure.distance_matrix
    off_diag = dm[~np.eye(len(structure), dtype=bool)]
    # A site's own periodic image can be closer than any other site in a thin cell.
    return float(min(off_diag.min(), min(structure.lattice.abc)))


def rejection_reason(
    structure: Structure,
    min_distance: float,
    max_sites: int,
    density_range: tuple[float, float] | None = None,
) -> str | None:
    """Why a structure is unusable, or None when it passes (reasons are counted per round)."""
    if not structure.is_ordered:
        return "partial occupancy"
    if len(structure) > max_sites:
        return "too many sites"
    if density_range is not None:
        low, high = density_range
        if not low <= float(structure.density) <= high:
            return "density out of range"
    if min_interatomic_distance(structure) < min_distance:
        return "atoms too close"
    return None
