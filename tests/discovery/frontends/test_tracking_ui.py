"""`discovery ui` serves the campaign's MLflow store; runs are visible over the REST API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import requests
from conftest import REPO, toy_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_serves_campaign_runs(toy_campaign):
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "discovery.frontends.cli",
            "ui",
            str(toy_campaign),
            "--port",
            str(port),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the server forks workers: stop the whole group
    )
    base = f"http://127.0.0.1:{port}/api/2.0/mlflow"
    name = toy_config()["name"]
    try:
        deadline = time.monotonic() + 120
        exp = None
        while time.monotonic() < deadline:
            try:
                r = requests.get(
                    f"{base}/experiments/get-by-name", params={"experiment_name": name}, timeout=2
                )
                if r.status_code == 200:
                    exp = r.json()["experiment"]
                    break
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or busy
                pass
            assert proc.poll() is None, "the UI server exited"
            time.sleep(0.5)
        assert exp is not None, "the UI did not come up"
        runs = requests.post(
            f"{base}/runs/search", json={"experiment_ids": [exp["experiment_id"]]}, timeout=10
        ).json()["runs"]
        names = sorted(r["info"]["run_name"] for r in runs)
        rounds = toy_config()["rounds"]
        assert names == sorted([name] + [f"round-{i}" for i in range(rounds)])
        child = next(r for r in runs if r["info"]["run_name"] == "round-1")
        metrics = {m["key"]: m["value"] for m in child["data"]["metrics"]}
        assert metrics["validated"] == toy_config()["validation_budget"]
        assert {"hit_rate", "stable", "mae_before_retrain", "unique"} <= set(metrics)
        tags = {t["key"]: t["value"] for t in child["data"]["tags"]}
        parent = next(r for r in runs if r["info"]["run_name"] == name)
        assert tags["mlflow.parentRunId"] == parent["info"]["run_id"]
        arts = requests.get(
            f"{base}/artifacts/list", params={"run_id": child["info"]["run_id"]}, timeout=10
        ).json()
        paths = {f["path"] for f in arts.get("files", [])}
        assert {"parity.png", "shortlist.csv", "model"} <= paths
        # Loss curves: one point per epoch and member, as the UI plots them.
        assert {"train_loss_member0", "variance_scale"} <= set(metrics)
        history = requests.get(
            f"{base}/metrics/get-history",
            params={"run_id": child["info"]["run_id"], "metric_key": "train_loss_member0"},
            timeout=10,
        ).json()["metrics"]
        steps = sorted(m["step"] for m in history)
        assert len(steps) > 5 and steps[:3] == [1, 2, 3]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_round_run_created_before_a_kill_is_adopted_not_duplicated(tmp_path):
    from discovery.engine.tracking import Tracker

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "adopt", tmp_path / "mlartifacts")
    parent = tracker.start_parent(None, "adopt", {"a": 1})
    first = tracker.start_round(None, parent, 0)
    # The store never learnt `first` (killed before its commit): the resume asks again.
    assert tracker.start_round(None, parent, 0) == first
    assert tracker.start_round(None, parent, 1) != first
    other_parent = tracker.start_parent(None, "adopt", {"a": 2})
    assert tracker.start_round(None, other_parent, 0) != first
