from __future__ import annotations

import pytest
from pymatgen.core import Composition

from discovery.domain.convex_hull import (
    FormationHull,
    elemental_chemical_potentials,
    formation_energy_per_atom,
)


def test_chemical_potentials_take_the_lowest_polymorph():
    mu = elemental_chemical_potentials(
        [(Composition("Cu"), -3.5), (Composition("Cu2"), -3.7), (Composition("CuAu"), -9.0)]
    )
    assert mu == {"Cu": -3.7}


def test_formation_energy():
    mu = {"Cu": -4.0, "Au": -3.0}
    # Cu3Au at -4.0 eV/atom: (-4.0*4 - (3*-4 + -3)) / 4 = -0.25
    assert formation_energy_per_atom(Composition("Cu3Au"), -4.0, mu) == pytest.approx(-0.25)
    with pytest.raises(KeyError, match="Pd"):
        formation_energy_per_atom(Composition("CuPd"), -4.0, mu)


def test_hull_distances_and_decomposition():
    hull = FormationHull(
        ["Cu", "Au"],
        [(1, Composition("Cu3Au"), -0.05), (2, Composition("CuAu"), -0.06),
         (3, Composition("CuAu3"), -0.01)],
    )  # fmt: skip
    assert hull.point(1).e_above_hull == pytest.approx(0.0, abs=1e-9)
    assert hull.point(2).e_above_hull == pytest.approx(0.0, abs=1e-9)
    # CuAu3 lies above the CuAu - Au tie line at x=0.75: -0.03 -> 0.02 above
    p3 = hull.point(3)
    assert p3.e_above_hull == pytest.approx(0.02, abs=1e-9)
    assert p3.decomposition == "Au:0.500 + CuAu:0.500"
    # a hypothetical entry below the hull has a negative distance
    assert hull.distance(Composition("Cu2Au"), -0.07) == pytest.approx(-0.07 + 0.05333333, 1e-6)
    assert hull.stable_formulas() == ["Au", "Cu", "Cu3Au", "CuAu"]
