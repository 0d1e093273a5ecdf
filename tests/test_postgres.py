"""The same campaign on a real PostgreSQL server: nothing in the store assumes SQLite.

Starts a throwaway server on loopback (initdb refuses root, so it runs as `postgres`)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import cli, toy_config, write_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="module")
def postgres_url():
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL server is not installed (.ci/run installs it)")
    pytest.importorskip("psycopg")
    bindir = Path(bins[-1]).parent
    # Not under pytest's tmp dir: that one is private to root and postgres must enter it.
    base = Path(tempfile.mkdtemp(prefix="discovery-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    data, port = base / "data", _free_port()
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                      "--no-sync"]),
        check=True, capture_output=True,
    )  # fmt: skip
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = str(bindir / "pg_ctl")
    subprocess.run(
        _as_postgres([pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-o", opts, "start"]),
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True)  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


def test_toy_campaign_on_postgres(postgres_url, tmp_path):
    import sqlalchemy as sa

    data = {**toy_config(), "name": "toy-on-postgres", "rounds": 2}
    data["store"] = {"url": postgres_url}
    config = write_config(tmp_path / "pg.yaml", data)
    directory = tmp_path / "run"
    result = cli("run", config, "--dir", directory)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (directory / "campaign.db").exists()  # the store really is the server

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
