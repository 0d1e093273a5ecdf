"""Initial magnetic moments, so spin-polarised back-ends start from a magnetic state."""

from __future__ import annotations

from ase import Atoms

# Ferromagnetic starting moments (µB) per element, high-spin like the Materials Project's
# input sets: a calculation started at zero moment stays on the non-magnetic saddle, while
# one started high relaxes down to whatever moment the physics prefers.
INITIAL_MOMENTS: dict[str, float] = {
    "V": 5.0,
    "Cr": 5.0,
    "Mn": 5.0,
    "Fe": 5.0,
    "Co": 5.0,
    "Ni": 5.0,
    "Mo": 5.0,
    "Ru": 3.0,
    "W": 5.0,
    "Ce": 5.0,
    "Nd": 3.0,
    "Sm": 5.0,
    "Eu": 7.0,
    "Gd": 7.0,
    "Tb": 6.0,
    "Dy": 5.0,
    "Ho": 4.0,
    "Er": 3.0,
}


def is_magnetic(atoms: Atoms) -> bool:
    """Whether any atom is of an element that gets a starting moment."""
    return any(symbol in INITIAL_MOMENTS for symbol in atoms.get_chemical_symbols())


def set_initial_moments(atoms: Atoms) -> bool:
    """Give magnetic elements their starting moments (others 0); True if any was set.

    Calculators that take initial moments (GPAW, VASP, ...) then run spin-polarised; ML
    potentials that predict moments themselves (CHGNet) or ignore spin (EMT, SevenNet-0)
    are unaffected. Moments already on the atoms are respected.
    """
    if not is_magnetic(atoms) or atoms.has("initial_magmoms"):
        return False
    atoms.set_initial_magnetic_moments(
        [INITIAL_MOMENTS.get(symbol, 0.0) for symbol in atoms.get_chemical_symbols()]
    )
    return True
