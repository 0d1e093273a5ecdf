"""A toy-sized campaign on the ladder [chgnet, gpaw]: CHGNet validates, GPAW (PBE) confirms the
round's best picks, and the review queue names the fidelity that decided each candidate."""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import cli, write_config

pytest.importorskip("gpaw", reason="GPAW is not installed (pip install -e '.[dft]')")

pytestmark = [pytest.mark.dft, pytest.mark.usefixtures("single_thread")]

# Li-Al: small cells, few electrons, and real compounds (LiAl). DFT settings are coarse on
# purpose (a mechanics test; the accuracy benchmark uses the defaults): 300 eV, 2 k-points per
# Å⁻¹, a few steps.
CONFIG = {
    "name": "dft-ladder-li-al",
    "chemical_systems": ["Li-Al"],
    "rounds": 1,
    "validation_budget": 4,
    "review_size": 3,
    "stability_threshold": 0.05,
    "seed": 3,
    "generation": {
        "substitution": {"budget": 6},
        "random": {"budget": 0},
        "compositions": {"max_atoms": 3, "charge_balanced": False},
        "max_sites": 3,
    },
    "model": {"n_members": 2, "hidden": 16, "epochs": 10},
    "fidelities": [
        {"name": "chgnet", "fmax": 0.1, "max_steps": 60},
        {
            "name": "gpaw",
            "promote": 2,
            "promote_max_e_above_hull": 0.3,
            "fmax": 0.1,
            "max_steps": 6,
            "max_seconds": 240,
            "options": {"ecut": 300, "kpt_density": 2.0},
        },
    ],
}


@pytest.fixture(scope="module")
def dft_campaign(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dft")
    config = write_config(tmp / "ladder.yaml", CONFIG)
    directory = tmp / "run"
    result = cli("run", config, "--dir", directory, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    return directory


def _rows(directory, sql):
    with sqlite3.connect(directory / "campaign.db") as con:
        return con.execute(sql).fetchall()


def test_dft_confirms_the_top_picks_on_its_own_hull(dft_campaign):
    promoted = _rows(
        dft_campaign,
        "select c.uid, k.ok from calculations k join candidates c on c.id = k.candidate_id "
        "where k.fidelity = 'gpaw' and not c.is_reference",
    )
    assert 1 <= len(promoted) <= 2
    assert all(ok for _, ok in promoted)
    # GPAW's hull is built from GPAW's own elemental references
    refs = _rows(
        dft_campaign,
        "select c.formula from calculations k join candidates c on c.id = k.candidate_id "
        "where k.fidelity = 'gpaw' and c.is_reference and k.ok",
    )
    assert {f.rstrip("0123456789") for (f,) in refs} >= {"Al", "Li"}
    hull = _rows(dft_campaign, "select count(*) from hull_results where fidelity = 'gpaw'")
    assert hull[0][0] >= len(promoted) + 2
    ((metrics,),) = _rows(dft_campaign, "select metrics from rounds")
    m = json.loads(metrics)
    assert m["promoted_gpaw"] == len(promoted)
    # CHGNet and PBE formation energies of the same crystals: close, not equal
    assert 0 < m["agreement_mae_chgnet_gpaw"] < 0.3


def test_review_queue_shows_the_deciding_fidelity(dft_campaign):
    result = cli("review", "list", dft_campaign)
    assert result.returncode == 0, result.stderr
    export = dft_campaign / "shortlist.json"
    result = cli("export", dft_campaign, "--format", "json", "--out", export)
    assert result.returncode == 0, result.stderr
    rows = json.loads(export.read_text())
    rows = rows["candidates"] if isinstance(rows, dict) else rows
    on_dft = {
        uid
        for (uid,) in _rows(
            dft_campaign,
            "select c.uid from calculations k join candidates c on c.id = k.candidate_id "
            "where k.fidelity = 'gpaw' and k.ok and not c.is_reference",
        )
    }
    assert rows, "LiAl-type compounds are stable: the queue should not be empty"
    for row in rows:
        assert row["fidelity"] == ("gpaw" if row["id"] in on_dft else "chgnet")
        assert row["stable"]
    # DFT-confirmed candidates come first
    assert rows[0]["fidelity"] == "gpaw"
