"""Does a structure's oxygen bonding match what its formula needs?

MP2020's anion correction depends on the oxide type, which pymatgen reads from the structure's
O–O distances (`MaterialsProject2020Compatibility` on a `ComputedStructureEntry`): an O–O
bond of ~1.5 Å is a peroxide, ~1.3 Å a superoxide, none a plain oxide. A formula such as
Li2O2 can only be charge-balanced with peroxide (O⁻) ions; if the relaxed structure has no O–O
bond, the correction treats it as an oxide (O²⁻) that it cannot be, and its energy above the
hull is not the peroxide's. The reviewer must see that."""

from __future__ import annotations

import warnings

from pymatgen.core import Composition, Structure
from pymatgen.core.structure_analyzer import oxide_type

# The oxide types that contain O–O bonds, and the oxygen oxidation state each implies.
_BONDED = {"peroxide": -1.0, "superoxide": -0.5, "ozonide": -1 / 3}


def balances_as_oxide(composition: Composition) -> bool:
    """Whether common oxidation states balance the formula with every oxygen O²⁻."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(composition.oxi_state_guesses(oxi_states_override={"O": [-2]}, max_sites=-1))


def shortest_oo(structure: Structure, cutoff: float = 4.0) -> float | None:
    """The shortest O–O distance in Å (periodic images included), or None when no two
    oxygen atoms lie within `cutoff`."""
    oxygen = [site for site in structure if site.specie.symbol == "O"]
    if not oxygen:
        return None
    _, neighbours, _, distances = structure.get_neighbor_list(cutoff, sites=oxygen)
    found = [
        float(d)
        for n, d in zip(neighbours, distances, strict=True)
        if structure[int(n)].specie.symbol == "O" and d > 1e-6
    ]
    return min(found) if found else None


def oxygen_bonding_warning(structure: Structure) -> str | None:
    """A warning when the formula needs O–O bonds (peroxide, superoxide) to be charge
    balanced but the structure has none; None when bonding and formula agree or there is
    no oxygen."""
    comp = structure.composition
    if "O" not in {el.symbol for el in comp.elements} or len(comp.elements) < 2:
        return None
    if balances_as_oxide(comp):
        return None
    kind = oxide_type(structure)
    if kind in _BONDED:
        return None
    distance = shortest_oo(structure)
    at = f" (shortest O–O {distance:.2f} Å)" if distance is not None else ""
    return (
        f"{comp.reduced_formula} is charge-balanced only with O–O bonds (peroxide or "
        f"superoxide), but this structure has none{at}: MP2020 corrects it as a plain oxide"
    )
