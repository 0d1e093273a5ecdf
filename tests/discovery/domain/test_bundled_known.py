"""The Li–Mn–O known-phase set shipped with the package."""

from __future__ import annotations

import gzip
import json
import time
import warnings
from importlib.resources import files

import pytest
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from discovery.domain.known import bundled
from discovery.domain.known.bundled import bundled_chemical_systems, bundled_phases
from discovery.domain.known.phase import MP2020

# The list: reduced formula -> the space groups (symbol) that must be present.
REQUIRED = {
    "Li": {"Im-3m"},
    "Mn": {"I-43m"},
    "O2": {"C2/m"},
    "Li2O": {"Fm-3m"},
    "Li2O2": {"P6_3/mmc"},
    "MnO": {"Fm-3m"},
    "Mn3O4": {"I4_1/amd"},
    "Mn2O3": {"Pbca"},
    "MnO2": {"I4/m", "P4_2/mnm"},
    "LiMnO2": {"Pmmn", "C2/m"},  # orthorhombic and monoclinic
    "LiMn2O4": {"Fd-3m"},
    "Li2MnO3": {"C2/m"},
    "Li4Mn5O12": set(),  # an ordered model cell: any space group
}
MP_IDS = {"mp-19006", "mp-19395", "mp-18759", "mp-35", "mp-12957", "mp-1172875"}


@pytest.fixture(scope="module")
def phases():
    return bundled_phases(["Li", "Mn", "O"])


def test_every_required_phase_is_present_with_its_space_group(phases):
    by_formula: dict[str, set[str]] = {}
    for p in phases:
        symbol = SpacegroupAnalyzer(p.structure, symprec=0.1).get_space_group_symbol()
        by_formula.setdefault(p.reduced_formula, set()).add(symbol)
    for formula, groups in REQUIRED.items():
        assert formula in by_formula, formula
        assert groups <= by_formula[formula], (formula, by_formula[formula])


def test_records_are_complete_and_consistent(phases):
    ids = [p.id for p in phases]
    assert len(ids) == len(set(ids))
    for p in phases:
        assert p.source == "bundled"
        assert p.structure.is_ordered
        assert set(p.provenance) == {"origin", "licence", "spacegroup"}
        assert p.provenance["origin"] and p.provenance["licence"]
        found = SpacegroupAnalyzer(p.structure, symprec=0.1).get_space_group_number()
        assert p.provenance["spacegroup"] == found, p.id
        assert 0.3 < p.structure.density < 10, p.id
        if p.id.startswith("lit-"):
            assert "literature" in p.provenance["licence"]
            assert p.energy_per_atom is None


def test_li2o2_keeps_its_peroxide_bond_and_limn2o4_is_a_cubic_spinel(phases):
    (li2o2,) = [p for p in phases if p.reduced_formula == "Li2O2"]
    oxygens = [i for i, site in enumerate(li2o2.structure) if site.specie.symbol == "O"]
    shortest = min(li2o2.structure.get_distance(i, j) for i in oxygens for j in oxygens if i != j)
    assert 1.4 <= shortest <= 1.6
    (spinel,) = [p for p in phases if p.reduced_formula == "LiMn2O4"]
    analyzer = SpacegroupAnalyzer(spinel.structure, symprec=0.1)
    assert analyzer.get_space_group_symbol() == "Fd-3m"
    assert analyzer.get_space_group_number() == 227


def test_no_atoms_too_close(phases):
    """No two atoms closer than 1.0 Å; O–O (O2, peroxide) no closer than 1.2 Å."""
    for p in phases:
        s = p.structure
        for site in s:
            for n in s.get_neighbors(site, 1.2):
                pair = {site.specie.symbol, n.specie.symbol}
                floor = 1.2 if pair == {"O"} else 1.0
                assert n.nn_distance >= floor, (p.id, pair, n.nn_distance)


def test_only_the_mp_entries_carry_energies(phases):
    with_energy = {p.id for p in phases if p.energy_per_atom is not None}
    assert with_energy == MP_IDS
    for p in phases:
        if p.id in MP_IDS:
            assert p.energy_scheme == MP2020
            assert "CC-BY-4.0" in p.provenance["licence"]


def test_mp_energies_equal_the_shared_entries(phases, shared_data):
    raw = json.loads((shared_data / "mp" / "Mn-O_entries.json").read_text())
    expected = {
        d["entry_id"]: (d["energy"] + d["correction"]) / sum(d["composition"].values()) for d in raw
    }
    assert set(expected) == MP_IDS
    got = {p.id: p for p in phases if p.id in MP_IDS}
    for entry_id, energy in expected.items():
        assert got[entry_id].energy_per_atom == pytest.approx(energy, abs=1e-9)
    # the structures are MP's own, unchanged
    for d in raw:
        assert len(got[d["entry_id"]].structure) == len(d["structure"]["sites"])


def test_filtering_by_elements():
    mn_o = bundled_phases({"Mn", "O"})
    assert mn_o and all(p.elements <= {"Mn", "O"} for p in mn_o)
    assert {p.reduced_formula for p in mn_o} == {"Mn", "O2", "MnO", "Mn3O4", "Mn2O3", "MnO2"}
    assert [p.reduced_formula for p in bundled_phases(["Li"])] == ["Li"]
    assert bundled_phases(["Fe", "Co"]) == []
    li_o = {p.reduced_formula for p in bundled_phases(["Li", "O", "Fe"])}
    assert li_o == {"Li", "O2", "Li2O", "Li2O2"}


def test_chemical_systems():
    assert bundled_chemical_systems() == ["Li-Mn-O"]


def test_loads_in_under_a_second():
    bundled._records.cache_clear()
    start = time.perf_counter()
    phases = bundled_phases(["Li", "Mn", "O"])
    assert time.perf_counter() - start < 1.0
    assert len(phases) >= len(REQUIRED)


def test_data_card_names_every_phase():
    known = files("discovery").joinpath("data", "known")
    card = known.joinpath("README.md").read_text()
    records = json.loads(gzip.decompress(known.joinpath("li-mn-o.json.gz").read_bytes()))
    for record in records:
        assert f"`{record['id']}`" in card, record["id"]


def test_the_builder_reproduces_the_shipped_file(shared_data):
    from discovery.domain.known.build_bundled import build

    known = files("discovery").joinpath("data", "known")
    shipped = json.loads(gzip.decompress(known.joinpath("li-mn-o.json.gz").read_bytes()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen CIF and symmetry chatter
        rebuilt = json.loads(json.dumps(build(shared_data)))
    assert rebuilt == shipped


def test_the_package_data_ships_the_sets():
    import tomllib
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
    assert {"data/known/*.json.gz", "data/known/*.md"} <= set(data["discovery"])
