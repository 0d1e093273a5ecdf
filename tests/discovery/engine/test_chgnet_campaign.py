"""A one-round CHGNet campaign: the quickstart's code path (MP-compatible potential, oxide
chemistry, dimer reference) end to end, kept small."""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import cli, tiny_quickstart, write_config

from discovery.domain.mp2020_corrections import mp_formation_energy_per_atom
from discovery.domain.mp_elemental_references import mp_chemical_potentials
from discovery.store.convert import structure_from_json


def test_mp_elemental_references_ship_with_the_package():
    mu = mp_chemical_potentials()
    assert len(mu) == 89
    assert mu["O"] == pytest.approx(-4.94669, abs=1e-4)
    assert mu["Li"] == pytest.approx(-1.90892, abs=1e-4)


@pytest.mark.slow
def test_tiny_chgnet_campaign(tmp_path):
    data = tiny_quickstart("tiny-chgnet", ["Li-O"], 3, substitution=3, random=2)
    config = write_config(tmp_path / "tiny.yaml", data)
    result = cli("run", config, "--dir", tmp_path / "run")
    assert result.returncode == 0, result.stderr[-3000:]
    with sqlite3.connect(tmp_path / "run" / "campaign.db") as con:
        refs = con.execute(
            "select c.formula, k.ok, k.energy_per_atom from candidates c "
            "join calculations k on k.candidate_id = c.id where c.is_reference"
        ).fetchall()
        validated = con.execute(
            "select count(*) from calculations where round_index = 0"
        ).fetchone()[0]
        hull = con.execute("select count(*) from hull_results").fetchone()[0]
        compound = con.execute(
            "select k.final_structure, k.energy_per_atom, h.e_form_per_atom from candidates c "
            "join calculations k on k.candidate_id = c.id join hull_results h on "
            "h.candidate_id = c.id where c.chemsys = 'Li-O' and k.ok limit 1"
        ).fetchone()
        ok = con.execute("select count(*) from calculations where ok").fetchone()[0]
    assert all(ok for _, ok, _ in refs)
    o2 = [e for f, _, e in refs if f == "O2"]
    # CHGNet's isolated O2 sits ~0.13 eV/atom above MP's solid-O2 reference
    assert o2 and o2[0] - mp_chemical_potentials()["O"] == pytest.approx(0.128, abs=0.03)
    assert validated == 3
    assert hull == ok  # every successful entry got a point on the hull
    # the quickstart's formation energies are on MP's scale, against MP's elements
    structure = structure_from_json(json.loads(compound[0]))
    # CHGNet's energies are already MP2020-corrected: only MP's elemental references go.
    mu = mp_chemical_potentials()
    comp = structure.composition.fractional_composition
    native = compound[1] - sum(x * mu[el.symbol] for el, x in comp.items())
    assert compound[2] == pytest.approx(native)
    assert compound[2] != pytest.approx(mp_formation_energy_per_atom(structure, compound[1]))
