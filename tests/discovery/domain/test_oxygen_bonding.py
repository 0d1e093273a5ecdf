"""Oxide type from the structure: MP2020 reads O–O bonds, and a formula that needs them but a
structure that lacks them is flagged for the reviewer."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from discovery.domain.mp2020_corrections import corrected_energy_per_atom
from discovery.domain.oxygen_bonding import (
    balances_as_oxide,
    oxygen_bonding_warning,
    shortest_oo,
)
from discovery.domain.review_warnings import hull_disagreement, review_warnings


@pytest.fixture(scope="module")
def peroxide(shared_data) -> Structure:
    return Structure.from_file(shared_data / "structures" / "pymatgen" / "Li2O2.json")


def rock_salt_lio() -> Structure:
    """Li2O2's formula with no O–O bond: Li and O on a rock-salt lattice."""
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.1), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def test_li2o2_needs_peroxide_bonds_and_the_real_structure_has_them(peroxide):
    assert not balances_as_oxide(peroxide.composition)
    assert shortest_oo(peroxide) == pytest.approx(1.55, abs=0.05)
    assert oxygen_bonding_warning(peroxide) is None


def test_a_peroxide_formula_without_oo_bonds_is_flagged():
    warning = oxygen_bonding_warning(rock_salt_lio())
    assert warning is not None
    assert "Li2O2" in warning and "O–O" in warning and "2.90" in warning


def test_plain_oxides_and_oxygen_free_structures_pass(shared_data):
    li2o = Structure.from_file(shared_data / "structures" / "pymatgen" / "Li2O.json")
    assert balances_as_oxide(li2o.composition) and oxygen_bonding_warning(li2o) is None
    si = Structure.from_file(shared_data / "structures" / "pymatgen" / "Si.json")
    assert oxygen_bonding_warning(si) is None


def test_mp2020_corrects_the_relaxed_structure_by_its_own_oxide_type(peroxide):
    """The same energy on the two structures: the peroxide gets MP2020's peroxide correction
    (-0.465 eV per O), the bond-less one the oxide correction (-0.687 eV per O)."""
    energy = -4.0
    as_peroxide = corrected_energy_per_atom(peroxide, energy)
    as_oxide = corrected_energy_per_atom(rock_salt_lio(), energy)
    assert as_peroxide - as_oxide == pytest.approx((-0.465 + 0.687) * 2 / 4, abs=2e-3)


def test_hull_disagreement_beyond_the_tolerance_is_a_warning(peroxide):
    assert hull_disagreement(0.01, 0.05, "same_fidelity", 0.1) is None
    assert hull_disagreement(0.01, None, "same_fidelity", 0.1) is None
    text = hull_disagreement(0.0, 0.25, "same_fidelity", 0.1)
    assert text is not None and "database" in text and "+0.250" in text
    assert review_warnings(peroxide, 0.0, 0.02, "database", 0.1) == []
    assert len(review_warnings(rock_salt_lio(), 0.0, 0.5, "database", 0.1)) == 2
