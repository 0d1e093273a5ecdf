"""A campaign SIGKILLed inside any stage resumes to the store an uninterrupted run makes,
redoing nothing it had committed.

Each kill is placed by `discovery.engine.faults` (DISCOVERY_FAULT=<stage>:<n>:<round>): the
`discovery run` process SIGKILLs itself at a known point inside the stage (rows flushed but not
committed, or mid-training, or after the n-th committed relaxation), so every case dies mid-stage,
never between stages, without sleeping and hoping.

Every case would repeat the references and round 0 before reaching its kill, so they start
instead from a copy of one campaign stopped after round 0 (a 1-round run that the 2-round
config extends). The reference they are compared with is a 2-round run from scratch in one
process, so that a stop at the round boundary is held to the same standard.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys

import pytest
from conftest import REPO, toy_config, write_config

from discovery.engine.faults import ENV
from discovery.engine.round_loop import STAGE_ORDER

ROUNDS = 2
KILL_ROUND = 1  # round 0 has no model, so nothing to screen: round 1 runs every stage
# (stage, n): killed at the n-th fault point of that stage in round 1 (discovery/engine/faults.py)
KILLS = [
    ("generated", 1),  # the round's candidates flushed, not committed
    ("screened", 1),  # the predictions flushed, not committed
    ("validated", 3),  # after the 3rd of 8 committed relaxations
    ("trained", 40),  # mid-fit: 40 epochs done over the ensemble's members, nothing saved
    ("reviewed", 1),  # the review queue flushed, not committed
]
ENERGY_TOL = 1e-8
MODEL_TOL = 1e-6

# What must match between the resumed and the uninterrupted store; floats within a tolerance.
SNAPSHOT = {
    "candidates": (
        "select uid, round_index, is_reference, reduced_formula, dedup_key, status "
        "from candidates order by uid",
        0.0,
    ),
    "calculations": (
        "select c.uid, k.fidelity, k.round_index, k.ok, k.converged, k.steps, k.energy, "
        "k.energy_per_atom from calculations k join candidates c on c.id = k.candidate_id "
        "order by c.uid, k.fidelity",
        ENERGY_TOL,
    ),
    # novelty in the review queue goes by validation order, so that must match too
    "validation_order": (
        "select c.uid, k.fidelity from calculations k join candidates c on c.id = k.candidate_id "
        "order by k.id",
        0.0,
    ),
    "hull": (
        "select c.uid, h.fidelity, h.round_index, h.e_form_per_atom, h.e_above_hull, h.stable "
        "from hull_results h join candidates c on c.id = h.candidate_id "
        "order by c.uid, h.fidelity, h.round_index",
        ENERGY_TOL,
    ),
    "models": (
        "select version, round_index, n_train, checkpoint from model_versions order by version",
        0.0,
    ),
    "predictions": (
        "select c.uid, p.model_version, p.round_index, p.e_form_mean, p.e_form_std, "
        "p.e_hull_mean from predictions p join candidates c on c.id = p.candidate_id "
        "order by c.uid, p.model_version",
        MODEL_TOL,
    ),
    "review": (
        "select c.uid, q.round_index, q.rank, q.status from review_queue q "
        "join candidates c on c.id = q.candidate_id order by q.rank",
        0.0,
    ),
    "rounds": ('select "index", stage, screen_model from rounds order by "index"', 0.0),
}


def _query(directory, sql):
    with sqlite3.connect(directory / "campaign.db", timeout=5) as con:
        return con.execute(sql).fetchall()


def _run(config, directory, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # One thread: the resumed and the reference run then sum in the same order (bitwise the
    # same models), and tiny BLAS/torch work is not slowed by threads on a busy machine.
    env["OMP_NUM_THREADS"] = "1"
    env.pop(ENV, None)
    if fault is not None:
        env[ENV] = fault
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "discovery.frontends.cli",
            "run",
            str(config),
            "--dir",
            str(directory),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def _same(a, b, tol: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=0.0, abs_tol=tol) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, tol) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], tol) for k in a)
    return a == b


def _round_metrics(directory) -> dict:
    import json

    out = {}
    for index, metrics in _query(directory, 'select "index", metrics from rounds'):
        # wall times differ run to run; everything else is a result
        out[index] = {
            k: v for k, v in json.loads(metrics).items() if "wall" not in k and k != "train_wall_s"
        }
    return out


def _assert_same_store(resumed, reference) -> None:
    for name, (sql, tol) in SNAPSHOT.items():
        got, want = _query(resumed, sql), _query(reference, sql)
        assert len(got) == len(want), f"{name}: {len(got)} rows, uninterrupted {len(want)}"
        for g, w in zip(got, want, strict=True):
            assert _same(g, w, tol), f"{name}: {g} != {w} (uninterrupted)"
    got, want = _round_metrics(resumed), _round_metrics(reference)
    assert _same(got, want, MODEL_TOL), f"round metrics: {got} != {want}"
    _assert_same_models(resumed, reference)


def _assert_same_models(resumed, reference) -> None:
    from models.checkpoints import read_checkpoint

    for (path,) in _query(reference, "select checkpoint from model_versions"):
        got, want = read_checkpoint(resumed / path), read_checkpoint(reference / path)
        assert got["extra"]["train_ids"] == want["extra"]["train_ids"], path
        assert len(got["members"]) == len(want["members"])
        for g, w in zip(got["members"], want["members"], strict=True):
            assert g.keys() == w.keys()
            for key in g:
                assert (g[key] - w[key]).abs().max().item() <= MODEL_TOL, f"{path}: {key}"


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    base = tmp_path_factory.mktemp("resume-configs")
    data = toy_config()
    return (
        write_config(base / "round0.yaml", {**data, "rounds": KILL_ROUND}),
        write_config(base / "full.yaml", {**data, "rounds": ROUNDS}),
    )


@pytest.fixture(scope="module")
def round0(configs, tmp_path_factory):
    """The toy campaign stopped after round 0, for every case to start from."""
    directory = tmp_path_factory.mktemp("resume") / "round0"
    result = _run(configs[0], directory)
    assert result.returncode == 0, result.stderr[-3000:]
    return directory


@pytest.fixture(scope="module")
def uninterrupted(configs, tmp_path_factory):
    directory = tmp_path_factory.mktemp("resume") / "uninterrupted"
    result = _run(configs[1], directory)
    assert result.returncode == 0, result.stderr[-3000:]
    return directory


@pytest.mark.parametrize(("stage", "n"), KILLS, ids=[stage for stage, _ in KILLS])
def test_sigkill_inside_a_stage_then_resume(stage, n, configs, round0, uninterrupted, tmp_path):
    directory = tmp_path / "killed"
    # MLflow keeps absolute artifact paths, so the copy logs its artifacts into round0's
    # folder; harmless here, where only the store is compared.
    shutil.copytree(round0, directory)
    killed = _run(configs[1], directory, fault=f"{stage}:{n}:{KILL_ROUND}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert f"killing this process at {stage}" in killed.stderr

    rounds = dict(_query(directory, 'select "index", stage from rounds'))
    before_stage = STAGE_ORDER[STAGE_ORDER.index(stage) - 1]
    assert rounds[KILL_ROUND] == before_stage, "not killed inside the stage"
    calc_cols = "select id, candidate_id, fidelity, created_at, energy from calculations"
    before = _query(directory, calc_cols)
    if stage == "validated":
        n_round = _query(
            directory, f"select count(*) from calculations where round_index = {KILL_ROUND}"
        )[0][0]
        assert n_round == n, "the relaxations committed before the kill are in the store"

    resumed = _run(configs[1], directory)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    if before_stage != "started":
        assert f"resuming after stage '{before_stage}'" in resumed.stderr

    # nothing committed before the kill was redone or rewritten, and nothing is there twice
    after = _query(directory, calc_cols)
    assert set(before) <= set(after)
    dupes = _query(
        directory,
        "select candidate_id, fidelity, count(*) from calculations "
        "group by candidate_id, fidelity having count(*) > 1",
    )
    assert dupes == []
    _assert_same_store(directory, uninterrupted)
