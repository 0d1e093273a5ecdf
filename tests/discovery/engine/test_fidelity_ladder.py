"""The fidelity ladder: config, promotion, per-rung hulls, agreement, the deciding rung in the
review queue, and MP2020-compatible formation energies."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import cli, toy_config
from pymatgen.core import Lattice, Structure

from discovery.config import ConfigError, parse_config
from discovery.domain.mp2020_corrections import (
    corrected_energy_per_atom,
    mp_formation_energy_per_atom,
)
from discovery.domain.mp_elemental_references import mp_chemical_potentials
from discovery.domain.records import CandidateRecord
from discovery.engine.review_queue import fill_queue
from discovery.engine.round_loop import run_campaign
from discovery.engine.shortlist import shortlist
from discovery.store import Campaign, Database, HullResult
from discovery.store.convert import calculation_row, candidate_row
from simulators import RelaxResult

pytestmark = pytest.mark.usefixtures("single_thread")


def _config(**extra) -> dict:
    return {"name": "ladder", "chemical_systems": ["Na-Cl"], **extra}


# --- config -------------------------------------------------------------------------------------


def test_a_list_of_names_is_a_ladder_whose_first_rung_is_the_simulator():
    config = parse_config(_config(fidelities=["chgnet", "gpaw"]))
    assert config.simulator.name == "chgnet"
    assert [r.fidelity for r in config.ladder] == ["chgnet", "gpaw"]
    assert config.ladder[1].promote == 2


def test_an_explicit_simulator_section_is_kept_as_the_first_rung():
    # Written out in full, even at its defaults, the section is the user's, not filled in.
    config = parse_config(
        _config(simulator={"name": "sevennet", "fmax": 0.02}, fidelities=["sevennet", "gpaw"])
    )
    assert config.simulator.fmax == 0.02 and config.ladder[0] is config.simulator


def test_ladder_errors_name_the_field():
    cases = [
        (dict(fidelities=["emt", "emt"]), "'fidelities'.*appears twice"),
        # (sevennet, not emt: EMT has no Na or Cl, which the simulator section fails on first)
        (dict(simulator={"name": "sevennet"}, fidelities=["chgnet", "gpaw"]), "first rung"),
        # A section that sets anything counts as given, even when it sets no name.
        (dict(simulator={"fmax": 0.02}, fidelities=["chgnet", "gpaw"]), "first rung"),
        (dict(fidelities=["chgnet", {"name": "gpaw", "promote": -1}]), "fidelities.1.promote"),
        (dict(fidelities=["chgnet", "no-such"]), "fidelities.1.name"),
        (dict(simulator={"name": "gpaw", "formation_energy": "mp2020"}), "simulator.*mp2020"),
    ]
    for extra, pattern in cases:
        with pytest.raises(ConfigError, match=pattern):
            parse_config(_config(**extra))


# --- MP2020 -------------------------------------------------------------------------------------


def test_mp2020_corrections_match_the_published_constants():
    # MP2020: oxide -0.687 eV per O; Mn (GGA+U in an oxide) -1.668 eV per Mn.
    mno = Structure.from_prototype("rocksalt", ["Mn", "O"], a=4.44)
    assert corrected_energy_per_atom(mno, -8.0) == pytest.approx(-8.0 - (0.687 + 1.668) / 2)
    # Li2O is a plain GGA oxide: only the anion correction.
    li2o = Structure.from_prototype("fluorite", ["O", "Li"], a=4.62)
    assert corrected_energy_per_atom(li2o, -4.7) == pytest.approx(-4.7 - 0.687 / 3)
    si = Structure(Lattice.cubic(5.47), ["Si"] * 2, [[0, 0, 0], [0.25, 0.25, 0.25]])
    assert corrected_energy_per_atom(si, -5.4) == pytest.approx(-5.4)


def test_mp2020_formation_energy_of_an_element_at_its_reference_is_zero():
    mu = mp_chemical_potentials()
    na = Structure(Lattice.cubic(4.23), ["Na"] * 2, [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert mp_formation_energy_per_atom(na, mu["Na"]) == pytest.approx(0.0, abs=1e-12)
    nacl = Structure.from_prototype("rocksalt", ["Na", "Cl"], a=5.69)
    e_form = mp_formation_energy_per_atom(nacl, (mu["Na"] + mu["Cl"]) / 2 - 2.0)
    assert e_form == pytest.approx(-2.0 - 0.614 / 2)  # MP2020 chloride: -0.614 eV per Cl


# --- the review queue's deciding rung -----------------------------------------------------------


def _structure(species, a=4.0):
    coords = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(a), species, coords)


def _add(session, uid, species, hulls):
    """A validated candidate with hull results {fidelity: e_above_hull} in round 0."""
    s = _structure(species)
    cand = candidate_row(CandidateRecord(s, "random"), 1, uid, 0, False)
    session.add(cand)
    session.flush()
    for fidelity, e_hull in hulls.items():
        result = RelaxResult(fidelity, s, -16.0, -4.0, 0.01, None, True, 3, 0.1)
        session.add(calculation_row(cand, result, fidelity, 0))
        session.add(
            HullResult(
                candidate_id=cand.id,
                fidelity=fidelity,
                round_index=0,
                e_form_per_atom=-0.1,
                e_above_hull=e_hull,
                stable=e_hull <= 0.05,
            )
        )


def test_the_highest_rung_decides_and_confirmed_candidates_come_first(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'campaign.db'}")
    with db.session() as s:
        s.add(Campaign(name="t", config_yaml="name: t\n"))
    with db.session() as s:
        _add(s, "refuted", ["Cu", "Au", "Au", "Au"], {"pot": 0.00, "dft": 0.20})
        _add(s, "confirmed", ["Cu", "Cu", "Au", "Au"], {"pot": 0.03, "dft": 0.01})
        _add(s, "pot-only", ["Cu", "Cu", "Cu", "Au"], {"pot": 0.01})
    with db.session() as s:
        assert fill_queue(s, 1, "pot", 0, size=5, higher=["dft"]) == 2
    rows = [row for row, _ in shortlist(db, 1, ["pot", "dft"])]
    assert [(r["id"], r["fidelity"]) for r in rows] == [("confirmed", "dft"), ("pot-only", "pot")]
    assert rows[0]["e_above_hull"] == pytest.approx(0.01)
    assert rows[0]["e_above_hull_first"] == pytest.approx(0.03)
    db.dispose()


# --- a whole campaign on a two-rung EMT ladder --------------------------------------------------


@pytest.fixture(scope="module")
def ladder_campaign(tmp_path_factory):
    data = toy_config()
    data.update(name="toy-ladder", rounds=2, validation_budget=6)
    tight = {"name": "emt", "label": "emt-tight", "fmax": 0.005, "max_steps": 400}
    data["fidelities"] = ["emt", {**tight, "promote": 2, "promote_max_e_above_hull": 1.0}]
    config = parse_config(data)
    directory = tmp_path_factory.mktemp("ladder") / "run"
    run_campaign(config, directory)
    return config, directory


def _rows(directory, sql):
    with sqlite3.connect(directory / "campaign.db") as con:
        return con.execute(sql).fetchall()


def test_each_round_promotes_its_best_candidates_to_the_next_rung(ladder_campaign):
    config, directory = ladder_campaign
    for r in range(config.rounds):
        promoted = {
            cid
            for (cid,) in _rows(
                directory,
                f"select k.candidate_id from calculations k join candidates c on c.id = "
                f"k.candidate_id where k.fidelity = 'emt-tight' and k.round_index = {r} "
                f"and not c.is_reference",
            )
        }
        best = _rows(
            directory,
            f"select h.candidate_id from hull_results h join calculations k on k.candidate_id = "
            f"h.candidate_id and k.fidelity = 'emt' join candidates c on c.id = h.candidate_id "
            f"where h.fidelity = 'emt' and h.round_index = {r} and k.round_index = {r} "
            f"and not c.is_reference order by h.e_above_hull, h.candidate_id limit 2",
        )
        assert promoted == {cid for (cid,) in best}
        # the promoted rung has its own hull this round
        assert _rows(
            directory,
            f"select count(*) from hull_results where fidelity = 'emt-tight' and round_index = {r}",
        )[0][0] >= len(promoted)
    # each rung has its own elemental energies; the higher rung only computes the references
    # near the lower rung's hull (here within promote_max_e_above_hull = 1 eV/atom)
    refs = {
        f: n
        for f, n in _rows(
            directory,
            "select k.fidelity, count(*) from calculations k join candidates c on "
            "c.id = k.candidate_id where c.is_reference group by k.fidelity",
        )
    }
    assert len(config.elements) <= refs["emt-tight"] <= refs["emt"]


def test_rungs_agree_and_the_metrics_say_so(ladder_campaign):
    config, directory = ladder_campaign
    import json

    for (metrics,) in _rows(directory, 'select metrics from rounds order by "index"'):
        m = json.loads(metrics)
        assert m["promoted_emt-tight"] == 2
        # the same physics converged harder: formation energies agree within meV
        assert m["agreement_mae_emt_emt-tight"] < 0.01
        assert m["agreement_n_emt_emt-tight"] >= 2


def test_queue_names_the_deciding_fidelity_and_resume_redoes_nothing(ladder_campaign, tmp_path):
    config, directory = ladder_campaign
    db = Database(f"sqlite:///{directory / 'campaign.db'}")
    rows = [row for row, _ in shortlist(db, 1, ["emt", "emt-tight"])]
    db.dispose()
    assert rows, "the toy ladder should queue something"
    promoted = {
        uid
        for (uid,) in _rows(
            directory,
            "select c.uid from candidates c join calculations k on k.candidate_id = c.id "
            "where k.fidelity = 'emt-tight' and not c.is_reference",
        )
    }
    for row in rows:
        assert row["fidelity"] == ("emt-tight" if row["id"] in promoted else "emt")
    before = _rows(directory, "select id, fidelity, energy from calculations order by id")
    run_campaign(config, directory)
    assert _rows(directory, "select id, fidelity, energy from calculations order by id") == before


def test_status_and_web_table_name_the_deciding_fidelity(ladder_campaign):
    from discovery.engine.campaign_directory import open_campaign
    from discovery.frontends.status import top_candidates
    from discovery.frontends.web.data import candidate_rows

    _, directory = ladder_campaign
    camp = open_campaign(directory)
    promoted = {
        uid
        for (uid,) in _rows(
            directory,
            "select c.uid from candidates c join calculations k on k.candidate_id = c.id "
            "where k.fidelity = 'emt-tight' and k.ok and not c.is_reference",
        )
    }
    rows = [r for r in candidate_rows(camp) if r["e_above_hull"] is not None]
    assert {r["uid"] for r in rows if r["fidelity"] == "emt-tight"} == promoted
    assert {r["fidelity"] for r in top_candidates(camp, n=50)} <= {"emt", "emt-tight"}
    camp.db.dispose()
    from discovery.frontends.status import round_columns

    assert "agreement_mae_emt_emt-tight" in round_columns(camp)
    result = cli("status", directory)
    assert result.returncode == 0, result.stderr
    assert "toy-ladder (emt -> emt-tight)" in result.stdout
