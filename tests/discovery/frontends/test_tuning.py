"""`discovery tune`: an Optuna study on a campaign's data that prunes, resumes after a kill,
and writes settings a campaign config can include."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import optuna
import yaml
from conftest import REPO, TOY, cli, toy_config, write_config

from discovery.config import load_config


def _study(directory):
    storage = f"sqlite:///{directory / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def _done(study):
    return [t for t in study.trials if t.state.is_finished() and t.state.name != "FAIL"]


def test_tune_resumes_and_writes_includable_settings(toy_copy, tmp_path):
    first = cli("tune", TOY, "--dir", toy_copy, "--trials", "2", "--epochs", "8")
    assert first.returncode == 0, first.stderr[-2000:]
    before = [(t.number, t.params) for t in _done(_study(toy_copy))]
    assert len(before) == 2

    second = cli("tune", TOY, "--dir", toy_copy, "--trials", "3", "--epochs", "8")
    assert second.returncode == 0, second.stderr[-2000:]
    after = [(t.number, t.params) for t in _done(_study(toy_copy))]
    assert len(after) == 3 and after[:2] == before  # earlier trials kept, one more run

    best = yaml.safe_load((toy_copy / "best-model.yaml").read_text())["model"]
    assert set(best) == {"cutoff", "hidden", "layers", "learning_rate", "batch_size",
                         "weight_decay"}  # fmt: skip
    (tmp_path / "best-model.yaml").write_text((toy_copy / "best-model.yaml").read_text())
    data = {**toy_config(), "include": ["best-model.yaml"]}
    data["model"] = {"n_members": 4}  # the config's own settings win over the included ones
    config = load_config(write_config(tmp_path / "tuned.yaml", data))
    assert config.model.hidden == best["hidden"] and config.model.n_members == 4
    assert config.model.learning_rate == best["learning_rate"]


def test_tune_after_a_kill_mid_trial(toy_copy):
    proc = subprocess.Popen(
        [sys.executable, "-m", "discovery.frontends.cli", "tune", str(TOY), "--dir", str(toy_copy),
         "--trials", "2", "--epochs", "400"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            # Plain SQL, read-only: opening it through Optuna would race the child's schema setup.
            db = toy_copy / "optuna.db"
            try:
                if not db.exists():  # connecting would create it under the child's feet
                    raise sqlite3.OperationalError("not yet")
                with sqlite3.connect(db, timeout=1) as con:
                    # A running trial with a heartbeat: the resumed study can tell it died.
                    running = con.execute(
                        "select count(*) from trials t join trial_heartbeats h on "
                        "h.trial_id = t.trial_id where t.state = 'RUNNING'"
                    ).fetchone()[0]
            except sqlite3.OperationalError:
                running = 0
            if running:
                break
            assert proc.poll() is None, "tune finished before it could be killed"
            time.sleep(0.05)
        else:
            raise AssertionError("no trial started")
        # At once: a small toy trial can finish within a second.
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "tune had finished before the kill"
    time.sleep(5)  # past the heartbeat grace period
    result = cli("tune", TOY, "--dir", toy_copy, "--trials", "2", "--epochs", "6")
    assert result.returncode == 0, result.stderr[-2000:]
    states = [t.state.name for t in _study(toy_copy).trials]
    assert "RUNNING" not in states  # the killed trial was marked failed, not left hanging
    assert states.count("FAIL") == 1
    assert len(_done(_study(toy_copy))) == 2


def test_tune_needs_data(tmp_path):
    bad = cli("tune", TOY, "--dir", tmp_path / "none", "--trials", "1")
    assert bad.returncode != 0 and "no campaign" in bad.stderr
