"""The whole loop on the EMT toy world, through the real CLI and the real stores."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
import zipfile

import pytest
from conftest import cli, toy_config

from discovery.engine.shortlist import COLUMNS


def _db(directory):
    return sqlite3.connect(directory / "campaign.db")


def test_toy_campaign_status_shows_every_round(toy_campaign):
    result = cli("status", toy_campaign)
    assert result.returncode == 0, result.stderr
    rounds = toy_config()["rounds"]
    with _db(toy_campaign) as con:
        stages = con.execute('select idx, stage from (select "index" as idx, stage from rounds)')
        assert [s for _, s in sorted(stages)] == ["done"] * rounds
    for r in range(rounds):
        assert re.search(rf"│\s+{r}\s+│\s+done\s+│", result.stdout), result.stdout
    assert "top candidates" in result.stdout


def test_toy_campaign_discovers_stable_alloys(toy_campaign):
    with _db(toy_campaign) as con:
        n_calc = con.execute("select count(*) from calculations").fetchone()[0]
        dupes = con.execute(
            "select count(*) from (select candidate_id, fidelity, count(*) c from calculations "
            "group by candidate_id, fidelity having c > 1)"
        ).fetchone()[0]
        stable = con.execute("select count(*) from hull_results where stable").fetchone()[0]
        models = con.execute("select version from model_versions order by round_index").fetchall()
        preds = con.execute("select count(*) from predictions").fetchone()[0]
    cfg = toy_config()
    assert n_calc == 9 + cfg["rounds"] * cfg["validation_budget"]  # 3 elements x 3 polymorphs
    assert dupes == 0
    assert stable > 0
    assert [m for (m,) in models] == [f"r{r}" for r in range(cfg["rounds"])]
    assert preds > 0  # rounds after the first were screened by the model


def test_export_csv_has_provenance(toy_campaign, tmp_path):
    out = tmp_path / "s.csv"
    result = cli("export", toy_campaign, "--format", "csv", "--out", out)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert rows, "the shortlist is empty"
    assert tuple(rows[0]) == COLUMNS
    for row in rows:
        assert row["id"] and row["formula"] and row["simulator"] == "emt"
        assert float(row["e_above_hull"]) <= toy_config()["stability_threshold"]
        assert row["mlflow_run_id"] and row["review_status"] == "pending"
    # a candidate ranked by a model carries its predicted energy and model version
    later = [r for r in rows if int(r["round"]) > 0]
    assert all(r["model_version"].startswith("r") and r["e_form_pred"] for r in later)


def test_export_json_and_cif_zip(toy_campaign, tmp_path):
    assert (
        cli("export", toy_campaign, "--format", "json", "--out", tmp_path / "s.json").returncode
        == 0
    )
    rows = json.loads((tmp_path / "s.json").read_text())
    assert rows and set(COLUMNS) == set(rows[0])
    assert (
        cli("export", toy_campaign, "--format", "cif", "--out", tmp_path / "s.zip").returncode == 0
    )
    with zipfile.ZipFile(tmp_path / "s.zip") as zf:
        names = zf.namelist()
        assert "manifest.csv" in names
        cifs = [n for n in names if n.endswith(".cif")]
        assert len(cifs) == len(rows)
        assert "_cell_length_a" in zf.read(cifs[0]).decode()


def test_review_approve_reject_and_history(toy_copy):
    listing = cli("review", "list", toy_copy)
    assert listing.returncode == 0
    with _db(toy_copy) as con:
        uids = [u for (u,) in con.execute(
            "select c.uid from review_queue q join candidates c on c.id = q.candidate_id "
            "order by q.rank")]  # fmt: skip
    assert len(uids) >= 2
    assert uids[0] in listing.stdout
    ok = cli("review", "approve", toy_copy, uids[0], "--reviewer", "ada", "--note", "nice")
    assert ok.returncode == 0, ok.stderr
    no = cli("review", "reject", toy_copy, uids[1], "--reviewer", "bob", "--note", "dup of ICSD")
    assert no.returncode == 0
    with _db(toy_copy) as con:
        states = dict(
            con.execute(
                "select c.uid, q.status from review_queue q "
                "join candidates c on c.id = q.candidate_id"
            )
        )
        decisions = con.execute(
            "select decision, reviewer, note, created_at from review_decisions"
        ).fetchall()
    assert states[uids[0]] == "approved" and states[uids[1]] == "rejected"
    assert ("approved", "ada", "nice") == decisions[0][:3] and decisions[0][3]
    approved = cli("review", "list", toy_copy, "--status", "approved")
    assert uids[0] in approved.stdout and uids[1] not in approved.stdout


def test_review_errors_change_nothing(toy_copy):
    bad = cli("review", "approve", toy_copy, "r9-xxx-0000", "--reviewer", "ada")
    assert bad.returncode != 0 and "no candidate" in bad.stderr
    with _db(toy_copy) as con:
        ref = con.execute("select uid from candidates where is_reference limit 1").fetchone()[0]
    not_queued = cli("review", "reject", toy_copy, ref, "--reviewer", "ada")
    assert not_queued.returncode != 0 and "not in the review queue" in not_queued.stderr
    with _db(toy_copy) as con:
        assert con.execute("select count(*) from review_decisions").fetchone()[0] == 0


def test_rerun_of_a_finished_campaign_redoes_nothing(toy_copy):
    with _db(toy_copy) as con:
        before = con.execute("select id, created_at from calculations order by id").fetchall()
    result = cli("run", toy_copy / "campaign.yaml", "--dir", toy_copy)
    assert result.returncode == 0, result.stderr[-2000:]
    with _db(toy_copy) as con:
        after = con.execute("select id, created_at from calculations order by id").fetchall()
    assert before == after


def test_a_different_config_is_refused_in_the_same_dir(toy_copy, tmp_path):
    from conftest import write_config

    data = {**toy_config(), "seed": 99}
    result = cli("run", write_config(tmp_path / "other.yaml", data), "--dir", toy_copy)
    assert result.returncode != 0 and "different campaign" in result.stderr


@pytest.mark.parametrize("command", ["status", "export"])
def test_commands_on_a_missing_campaign_fail_clearly(tmp_path, command):
    args = [command, tmp_path / "none"]
    if command == "export":
        args += ["--out", tmp_path / "x.csv"]
    result = cli(*args)
    assert result.returncode != 0 and "no campaign" in result.stderr


def test_composition_model_and_volume_augmentation_through_the_config(tmp_path):
    """Switching the screening model is a config change only: a composition ensemble screens
    round 1, so polymorphs of one formula get one prediction; the crystal model's test-time
    volume augmentation is a config list."""
    from conftest import write_config

    from models.checkpoints import read_checkpoint

    data = {**toy_config(), "name": "toy-composition", "rounds": 2}
    data["model"] = {**data["model"], "kind": "composition", "epochs": 40}
    directory = tmp_path / "comp"
    result = cli("run", write_config(tmp_path / "comp.yaml", data), "--dir", directory)
    assert result.returncode == 0, result.stderr[-3000:]
    with _db(directory) as con:
        checkpoint = con.execute(
            "select checkpoint from model_versions order by round_index limit 1"
        ).fetchone()[0]
        rows = con.execute(
            "select c.reduced_formula, p.e_form_mean from predictions p "
            "join candidates c on c.id = p.candidate_id where p.round_index = 1"
        ).fetchall()
    assert read_checkpoint(directory / checkpoint)["kind"] == "composition"
    assert rows
    by_formula: dict[str, set[float]] = {}
    for formula, mean in rows:
        by_formula.setdefault(formula, set()).add(round(mean, 9))
    assert all(len(values) == 1 for values in by_formula.values())

    bad = {**toy_config(), "model": {**toy_config()["model"], "kind": "composition"}}
    bad["model"]["volume_augmentation"] = [0.9, 1.1]
    result = cli("validate", write_config(tmp_path / "bad.yaml", bad))
    assert result.returncode == 2 and "volume_augmentation needs kind: crystal" in result.stderr
