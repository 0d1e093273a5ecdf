"""What a reviewer must be told about a candidate before trusting its hull distance."""

from __future__ import annotations

from pymatgen.core import Structure

from discovery.domain.oxygen_bonding import oxygen_bonding_warning


def hull_disagreement(
    e_above_hull: float, e_above_hull_other: float | None, mode: str, tolerance: float
) -> str | None:
    """A warning when the two hulls (same fidelity, database) place a candidate further
    apart than `tolerance` eV/atom; None when they agree or only one exists."""
    if e_above_hull_other is None or abs(e_above_hull - e_above_hull_other) <= tolerance:
        return None
    other = "database" if mode == "same_fidelity" else "same_fidelity"
    return (
        f"the hulls disagree: {e_above_hull:+.3f} eV/atom on the {mode} hull, "
        f"{e_above_hull_other:+.3f} on the {other} hull (tolerance {tolerance:.3f})"
    )


def review_warnings(
    structure: Structure,
    e_above_hull: float,
    e_above_hull_other: float | None,
    mode: str,
    tolerance: float,
) -> list[str]:
    """Every warning for one candidate's relaxed structure and hull distances."""
    found = [
        oxygen_bonding_warning(structure),
        hull_disagreement(e_above_hull, e_above_hull_other, mode, tolerance),
    ]
    return [w for w in found if w is not None]
