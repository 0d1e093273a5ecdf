"""The team set-up of the README on loopback: a campaign whose store is a PostgreSQL database
and whose tracking is an MLflow server keeping its runs in another database of the same
server. Nothing in the store assumes SQLite.

The server is conftest's `postgres_server`, a throwaway one on loopback for the session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import _free_port, cli, new_postgres_database, toy_config, write_config


@pytest.fixture
def postgres_url(postgres_server):
    return new_postgres_database(postgres_server)


@pytest.fixture
def mlflow_server(postgres_server, tmp_path):
    """`mlflow server` with its backend store in PostgreSQL, as the README sets it up."""
    backend, port = new_postgres_database(postgres_server), _free_port()
    log = (tmp_path / "mlflow-server.log").open("w")
    mlflow = Path(sys.executable).with_name("mlflow")
    args = ["server", "--backend-store-uri", backend, "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [str(mlflow), *args, "--port", str(port), "--workers", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the server forks workers: stop the whole group
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (tmp_path / "mlflow-server.log").read_text()[-3000:]
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or busy
                pass
            assert time.monotonic() < deadline, "the MLflow server did not come up"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_toy_campaign_on_postgres_with_an_mlflow_server(postgres_url, mlflow_server, tmp_path):
    import sqlalchemy as sa

    data = {**toy_config(), "name": "toy-on-postgres", "rounds": 2}
    data["store"] = {"url": postgres_url}
    data["tracking"] = {"uri": mlflow_server}
    config = write_config(tmp_path / "pg.yaml", data)
    directory = tmp_path / "run"
    result = cli("run", config, "--dir", directory)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (directory / "campaign.db").exists()  # the store really is the server
    assert not (directory / "mlflow.db").exists()  # and so is the tracking

    api = f"{mlflow_server}/api/2.0/mlflow"
    exp = requests.get(
        f"{api}/experiments/get-by-name", params={"experiment_name": data["name"]}, timeout=10
    ).json()["experiment"]
    runs = requests.post(
        f"{api}/runs/search", json={"experiment_ids": [exp["experiment_id"]]}, timeout=10
    ).json()["runs"]
    by_name = {r["info"]["run_name"]: r for r in runs}
    assert set(by_name) == {data["name"], "round-0", "round-1"}
    metrics = {m["key"]: m["value"] for m in by_name["round-1"]["data"]["metrics"]}
    assert metrics["validated"] == data["validation_budget"]

    engine = sa.create_engine(postgres_url)
    with engine.connect() as con:
        stages = con.execute(sa.text('select "index", stage from rounds order by "index"')).all()
        calcs = con.execute(sa.text("select count(*) from calculations")).scalar()
        queued = (
            con.execute(
                sa.text(
                    "select c.uid from review_queue q join candidates c on c.id = q.candidate_id"
                )
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert [tuple(r) for r in stages] == [(0, "done"), (1, "done")]
    assert calcs == 9 + 2 * data["validation_budget"]
    assert queued

    approve = cli("review", "approve", directory, queued[0], "--reviewer", "ada")
    assert approve.returncode == 0, approve.stderr
    out = tmp_path / "s.csv"
    assert cli("export", directory, "--format", "csv", "--out", out).returncode == 0
    assert queued[0] in out.read_text() and "approved" in out.read_text()
