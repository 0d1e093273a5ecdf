"""`discovery pretrain` on EMT: a tiny run killed mid-labelling resumes without labelling
anything twice and writes a checkpoint with its data card and replay set; a campaign that
starts from that checkpoint is guided from round 0 and replays a falling share of synthetic
entries, weighted below its real ones, never its own predictions; a checkpoint that does not
fit is refused by field."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, tiny_pretrain, write_config

from discovery.engine.faults import ENV

PRETRAIN = tiny_pretrain()
# Small enough that the tiny campaign's few real entries already make the count fall.
REPLAY = {"size": 12, "halving": 4, "weight": 0.25}
MODEL = {k: v for k, v in PRETRAIN["model"].items() if k != "epochs"}
KILL_AT = 7  # the 7th committed label


def _cli(*args, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env.pop(ENV, None)
    if fault:
        env[ENV] = fault
    return subprocess.run(
        [sys.executable, "-m", "discovery.frontends.cli", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def _labels(out):
    with sqlite3.connect(out / "pretrain.db", timeout=5) as con:
        return con.execute(
            "select id, candidate_id, fidelity, created_at, energy from calculations order by id"
        ).fetchall()


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny pretraining run SIGKILLed after its 7th label, then resumed: (out dir, labels
    committed before the kill, stderr of the resumed run)."""
    base = tmp_path_factory.mktemp("pretrain")
    config = write_config(base / "pretrain.yaml", PRETRAIN)
    out = base / "out"
    killed = _cli("pretrain", config, "--out", out, fault=f"labelled:{KILL_AT}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    before = _labels(out)
    assert len(before) == KILL_AT
    assert not (out / "tiny-v0.pt").exists()
    resumed = _cli("pretrain", config, "--out", out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return out, before, resumed


def test_a_killed_pretrain_resumes_without_relabelling(pretrained):
    out, before, resumed = pretrained
    after = _labels(out)
    # every label committed before the kill is still there, untouched, and none twice
    assert after[: len(before)] == before
    keys = [(cand, fidelity) for _, cand, fidelity, _, _ in after]
    assert len(keys) == len(set(keys))
    labelled_now = len(after) - len(before)
    assert f"{KILL_AT} of {len(after)} labels already committed" in " ".join(resumed.stderr.split())
    assert f"labelled {labelled_now} now" in resumed.stdout


def test_pretrain_writes_a_checkpoint_and_its_data_card(pretrained):
    from models import Ensemble

    out, _, _ = pretrained
    card = json.loads((out / "tiny-v0.card.json").read_text())
    assert card["checkpoint"] == "tiny-v0.pt" and card["teacher"]["name"] == "emt"
    labels = card["labels"]
    assert labels["elements"] == ["Au", "Cu"]
    assert set(labels["label_kinds"]) <= {"reference", "relaxed", "single_point_corrected"}
    assert labels["label_kinds"]["relaxed"] >= 4
    corr = labels["correction"]
    assert corr["method"] in ("none", "shift", "linear") and corr["n_pairs"] >= 3
    assert all(v is None or v >= 0 for v in corr["loo_mae"].values())
    assert card["generation"]["kept"] > 0 and labels["generators"]["substitution"] > 0
    assert (
        "Label error against the teacher's full relaxation" in (out / "tiny-v0.card.md").read_text()
    )
    ensemble = Ensemble.load(out / "tiny-v0.pt", device="cpu")
    assert ensemble.n_members == 2 and ensemble.extra["elements"] == ["Au", "Cu"]
    assert ensemble.extra["pretrain"]["data_card"] == "tiny-v0.card.json"


def test_the_pretrain_run_is_tracked(pretrained):
    from mlflow.tracking import MlflowClient

    out, _, _ = pretrained
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("pretrain-tiny")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["kind"] == "pretrain"
    assert "train_mae" in run.data.metrics and "label_loo_mae_linear" in run.data.metrics


def test_corrections_are_measured_leave_one_out():
    from discovery.engine.pretraining.label_targets import measure_corrections

    x = np.array([0.5, 1.0, 1.5, 2.0, 3.0])
    y = 0.2 * x - 0.1  # relaxation removes most of a single point's excess
    result = measure_corrections(x, y, "auto")
    assert result["method"] == "linear"
    assert result["loo_mae"]["linear"] == pytest.approx(0.0, abs=1e-9)
    assert result["loo_mae"]["none"] > result["loo_mae"]["shift"] > 0
    assert measure_corrections(x, y, "shift")["method"] == "shift"


def test_each_generator_gets_its_own_correction_and_inaccurate_ones_give_no_labels():
    from discovery.engine.pretraining.label_targets import (
        generator_corrections,
        measure_corrections,
    )

    rng = np.random.default_rng(0)
    near = rng.uniform(-2.0, -0.5, 12)  # a prototype near its minimum: a constant offset
    far = rng.uniform(0.0, 3.0, 12)  # random structures: relaxation erases the single point
    pairs = {
        "substitution": (near + 0.1, near),
        "random": (far, rng.uniform(-2.5, 0.0, 12)),
        "partial": (np.array([0.3, 0.1]), np.array([0.2, 0.0])),  # too few to measure alone
    }
    pooled = measure_corrections(
        np.concatenate([x for x, _ in pairs.values()]),
        np.concatenate([y for _, y in pairs.values()]),
        "auto",
    )
    out = generator_corrections(pairs, pooled, "auto", max_error=0.3)
    assert out["substitution"]["own"] and out["substitution"]["use"]
    assert out["substitution"]["loo_mae"][out["substitution"]["method"]] < 1e-9
    assert out["random"]["own"] and not out["random"]["use"]
    assert not out["partial"]["own"] and out["partial"]["intercept"] == pooled["intercept"]
    assert all(c["use"] for c in generator_corrections(pairs, pooled, "auto", None).values())


def _campaign(path, checkpoint, rounds=1, **model):
    data = {
        "name": "guided",
        "chemical_systems": ["Cu-Au"],
        "rounds": rounds,
        "validation_budget": 3,
        "review_size": 1,
        "seed": 0,
        "generation": {
            "substitution": {"budget": 10},
            "random": {"budget": 4, "max_formula_units": 2},
            "compositions": {"max_atoms": 4, "charge_balanced": False},
            "min_distance": 1.5,
            "max_sites": 8,
        },
        "model": {**MODEL, "epochs": 5, "init": str(checkpoint), **model},
        "acquisition": {"strategy": "greedy"},
        "executor": {"kind": "inline"},
        "simulator": {"name": "emt", "max_steps": 200},
    }
    return write_config(path, data)


@pytest.fixture(scope="module")
def guided(pretrained, tmp_path_factory):
    """A two-round campaign from the tiny checkpoint, replaying its synthetic entries: (run
    directory, stderr)."""
    out, _, _ = pretrained
    base = tmp_path_factory.mktemp("guided")
    config = _campaign(base / "guided.yaml", out / "tiny-v0.pt", rounds=2, replay=REPLAY)
    run = _cli("run", config, "--dir", base / "run")
    assert run.returncode == 0, run.stderr[-3000:]
    return base / "run", run.stderr


def test_a_campaign_from_the_checkpoint_is_guided_from_round_0(guided):
    from mlflow.tracking import MlflowClient

    from discovery.domain.acquisition import select as acquire
    from discovery.domain.records import ScoredCandidate

    run_dir, stderr = guided
    assert "round 0: guided by checkpoint" in " ".join(stderr.split())
    with sqlite3.connect(run_dir / "campaign.db") as con:
        assert con.execute('select screen_model from rounds where "index" = 0').fetchone() == (
            "init",
        )
        versions = dict(con.execute("select version, round_index from model_versions"))
        assert versions == {"init": -1, "r0": 0, "r1": 1}
        pool = con.execute(
            "select id, chemsys, status, round_index from candidates where is_reference = 0 "
            "order by id"
        ).fetchall()
        n_predicted = con.execute(
            "select count(*) from predictions where model_version = 'init'"
        ).fetchone()[0]
        validated_0 = {cid for (cid,) in con.execute(
            "select candidate_id from calculations where round_index = 0"
        )}  # fmt: skip
    round0 = [(cid, chemsys) for cid, chemsys, _, r in pool if r == 0]
    assert n_predicted == len(round0)
    picked = {cid for cid, _ in round0 if cid in validated_0}
    # what the cold start would have picked: random, from the select stage's own stream
    scored = [ScoredCandidate(cid, chemsys, 0.0, 0.0) for cid, chemsys in round0]
    cold = acquire(scored, 3, "random", np.random.default_rng([0, 0, 2]))
    assert len(picked) == 3 and picked != set(cold)
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("guided")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert runs["round-0"].data.tags["guided_by"].endswith("tiny-v0.pt")
    assert runs["guided"].data.params["model.init"].endswith("tiny-v0.pt")
    assert runs["round-1"].data.metrics["synthetic_weight"] == REPLAY["weight"]


def test_pretrain_writes_a_replay_set_that_matches_its_card(pretrained):
    from discovery.engine.replay_set import TEACHER_KINDS, read_replay, sha256
    from models import Ensemble

    out, _, _ = pretrained
    card = json.loads((out / "tiny-v0.card.json").read_text())
    replay = out / "tiny-v0.replay.json.gz"
    assert card["replay"] == {
        "file": replay.name,
        "sha256": sha256(replay),
        "entries": card["labels"]["entries"],  # the tiny set is below replay_max
    }
    entries = read_replay(replay)
    assert len(entries) == card["replay"]["entries"]
    # teacher labels only: never a model's prediction
    assert {e.kind for e in entries} <= set(TEACHER_KINDS)
    assert {e.chemsys for e in entries} == {"Cu", "Au", "Au-Cu"}
    assert Ensemble.load(out / "tiny-v0.pt", device="cpu").extra["pretrain"]["replay"] == (
        replay.name
    )
    assert "## Replay set" in (out / "tiny-v0.card.md").read_text()


def test_a_replay_entry_must_carry_a_teacher_label(tmp_path):
    from discovery.engine.replay_set import ReplayEntry, write_replay

    entry = ReplayEntry("s-1", "Cu", "prediction", -0.1, {})
    with pytest.raises(ValueError, match="only teacher labels"):
        write_replay(tmp_path / "x.replay.json.gz", [entry])
    assert list(tmp_path.iterdir()) == []


def test_the_synthetic_share_falls_as_real_data_grows(guided):
    run_dir, _ = guided
    assert (run_dir / "checkpoints" / "init.replay.json.gz").is_file()
    with sqlite3.connect(run_dir / "campaign.db") as con:
        rows = [
            json.loads(m)
            for (m,) in con.execute('select metrics from rounds order by "index"').fetchall()
        ]
    real = [m["train_real"] for m in rows]
    synthetic = [m["train_synthetic"] for m in rows]
    share = [m["synthetic_share"] for m in rows]
    assert real[1] > real[0] > 0
    assert synthetic[0] > synthetic[1] > 0
    assert share[0] > share[1]
    assert all(m["synthetic_weight"] == REPLAY["weight"] < 1 for m in rows)
    assert not any("synthetic share" in w for m in rows for w in m.get("guard_warnings", []))


def test_synthetic_entries_weigh_less_than_real_ones(pretrained):
    from discovery.engine.replay_set import read_replay, with_replay

    out, _, _ = pretrained
    synthetic = read_replay(out / "tiny-v0.replay.json.gz")[:3]
    real = [object(), object()]
    structures, targets, weights = with_replay(real, [0.1, 0.2], synthetic, 0.25)
    n_synthetic = sum(1 + (e.relaxed is not None) for e in synthetic)
    assert len(structures) == len(targets) == len(weights) == 2 + n_synthetic
    assert weights == [1.0, 1.0] + [0.25] * n_synthetic
    assert with_replay(real, [0.1, 0.2], [], 0.25) == (real, [0.1, 0.2], None)


def test_training_never_reads_the_models_own_predictions(guided):
    """The training set comes from simulator calculations only: overwriting every stored
    prediction leaves it unchanged."""
    from sqlalchemy import select, update

    from discovery.engine.ensembles import training_set
    from discovery.store import Database, Prediction

    run_dir, _ = guided
    db = Database(f"sqlite:///{run_dir / 'campaign.db'}")
    try:
        with db.session() as session:
            before = training_set(session, 1, "emt")
            session.execute(update(Prediction).values(e_form_mean=99.0, e_hull_mean=99.0))
        with db.session() as session:
            assert set(session.scalars(select(Prediction.e_form_mean))) == {99.0}
            after = training_set(session, 1, "emt")
    finally:
        db.dispose()
    assert before[1] and before[1] == after[1] and before[2] == after[2]
    assert [s.as_dict() for s in before[0]] == [s.as_dict() for s in after[0]]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"hidden": 32}, "model.hidden: checkpoint has 16, config asks 32"),
        ({"n_members": 3}, "model.n_members"),
        ({"kind": "composition"}, "model.kind: checkpoint holds a crystal model"),
        ({"cutoff": 4.0}, "model.cutoff"),
    ],
)
def test_a_checkpoint_that_does_not_fit_is_refused_naming_the_field(
    pretrained, tmp_path, change, named
):
    from discovery.config import ConfigError, load_config
    from discovery.engine.initial_model import init_checkpoint

    out, _, _ = pretrained
    config = load_config(_campaign(tmp_path / "c.yaml", out / "tiny-v0.pt", **change))
    with pytest.raises(ConfigError, match="invalid value for 'model.init'") as err:
        init_checkpoint(config)
    assert named in str(err.value)


def test_a_checkpoint_that_never_saw_an_element_is_refused(pretrained, tmp_path):
    from discovery.config import ConfigError, load_config
    from discovery.engine.initial_model import init_checkpoint

    out, _, _ = pretrained
    path = _campaign(tmp_path / "c.yaml", out / "tiny-v0.pt")
    data = __import__("yaml").safe_load(path.read_text())
    data["chemical_systems"] = ["Cu-Au-Pd"]
    config = load_config(write_config(path, data))
    with pytest.raises(ConfigError, match="chemical_systems: .* never saw Pd"):
        init_checkpoint(config)


def test_a_missing_checkpoint_fails_clearly(tmp_path):
    from discovery.config import ConfigError, load_config
    from discovery.engine.initial_model import init_checkpoint

    missing = load_config(_campaign(tmp_path / "m.yaml", "nowhere.pt"))
    assert missing.model.init == str(tmp_path / "nowhere.pt")  # relative to the YAML
    with pytest.raises(ConfigError, match="model.init.*not found"):
        init_checkpoint(missing)
    assert load_config(_campaign(tmp_path / "s.yaml", "scratch")).model.init == "scratch"


def test_the_quickstart_starts_from_the_bundled_checkpoint_which_refuses_misfits(tmp_path):
    import yaml

    from discovery.config import ConfigError, load_config
    from discovery.engine.initial_model import bundled_checkpoint, init_checkpoint
    from discovery.engine.replay_set import read_replay, replay_path

    quick = load_config(REPO / "campaigns" / "quickstart.yaml")
    assert quick.model.init == "bundled"
    assert init_checkpoint(quick) == bundled_checkpoint()
    card = json.loads(bundled_checkpoint().with_suffix(".card.json").read_text())
    assert card["teacher"]["name"] == quick.simulator.name == "chgnet"
    assert {"Li", "Mn", "O"} <= set(card["elements"])
    # the two systems benchmarks/campaign_efficiency.py holds out were never pretrained on
    assert not {"Co-Na-O", "Fe-Mg-O"} & set(card["chemical_systems"])
    assert len(read_replay(replay_path(bundled_checkpoint()))) == card["replay"]["entries"]
    data = yaml.safe_load((REPO / "campaigns" / "quickstart.yaml").read_text())
    data["model"]["hidden"] = 16
    with pytest.raises(ConfigError, match="model.hidden: checkpoint has 48, config asks 16"):
        init_checkpoint(load_config(write_config(tmp_path / "h.yaml", data)))
    data["model"]["hidden"] = 48
    data["chemical_systems"] = ["Na-Cl"]
    with pytest.raises(ConfigError, match="never saw Cl"):
        init_checkpoint(load_config(write_config(tmp_path / "c.yaml", data)))


def test_a_checkpoint_without_a_replay_set_replays_nothing(pretrained, tmp_path):
    import shutil

    from discovery.engine.initial_model import _source_replay

    out, _, _ = pretrained
    assert _source_replay(out / "tiny-v0.pt") == out / "tiny-v0.replay.json.gz"
    alone = tmp_path / "tiny-v0.pt"
    shutil.copyfile(out / "tiny-v0.pt", alone)
    assert _source_replay(alone) is None


def test_the_modules_that_build_training_data_never_touch_predictions():
    """Structural half of the rule: training targets come from calculations and teacher
    labels; the code that assembles them does not name the predictions table."""
    import inspect

    from discovery.engine import ensembles, replay_set
    from discovery.engine.pretraining import label_targets
    from discovery.engine.stages import learn

    for module in (ensembles, replay_set, label_targets, learn):
        assert "Prediction" not in inspect.getsource(module), module.__name__
