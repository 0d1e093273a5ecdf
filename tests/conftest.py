"""Shared fixtures: paths, the toy campaign (run once per session), CLI helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TOY = REPO / "campaigns" / "toy-emt.yaml"


def cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real `discovery` console entry point in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "discovery.frontends.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture(scope="module")
def single_thread():
    """One torch thread and one BLAS thread for a test module. Tiny models gain nothing from
    intra-op threads, and on a shared, busy machine oversubscription slows them by orders of
    magnitude (a 2-second fit took over a minute; OpenBLAS threads spinning made the cell
    filter's small matrix exponentials many times slower). Use with
    `pytestmark = pytest.mark.usefixtures("single_thread")`."""
    import torch
    from threadpoolctl import threadpool_limits

    limits = threadpool_limits(1)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
    limits.restore_original_limits()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def toy_campaign(tmp_path_factory) -> Path:
    """campaigns/toy-emt.yaml run once, uninterrupted, through the CLI."""
    directory = tmp_path_factory.mktemp("toy") / "run"
    result = cli("run", TOY, "--dir", directory)
    assert result.returncode == 0, result.stderr[-3000:]
    return directory


@pytest.fixture
def toy_copy(toy_campaign, tmp_path) -> Path:
    """A private copy of the finished toy campaign for tests that write to it."""
    target = tmp_path / "toy"
    shutil.copytree(toy_campaign, target)
    return target


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def tiny_quickstart(name: str, systems: list[str], validation_budget: int, **budgets) -> dict:
    """The quickstart campaign cut to one round of a few candidates (its simulator and
    settings otherwise), for campaigns with a real potential; `budgets` are generator budgets
    (substitution=, random=)."""
    data = yaml.safe_load((REPO / "campaigns" / "quickstart.yaml").read_text())
    data.update(name=name, rounds=1, validation_budget=validation_budget, review_size=2)
    data["chemical_systems"] = systems
    for generator, budget in budgets.items():
        data["generation"][generator]["budget"] = budget
    data["model"]["epochs"] = 5
    # No references beyond the elements: the bundled known phases (up to 80 sites) would
    # dominate a one-round test's time.
    data["references"] = {"known": [], "sources": []}
    return data


def tiny_pretrain() -> dict:
    """A pretraining config of a few EMT-labelled Cu-Au structures (seconds), fresh each call."""
    return {
        "name": "tiny",
        "version": "0",
        "chemical_systems": ["Cu-Au", "Cu"],
        "seed": 0,
        "generation": {
            "substitution": {"budget": 6},
            "random": {"budget": 3, "max_formula_units": 2},
            "compositions": {"max_atoms": 4, "charge_balanced": False},
            "min_distance": 1.5,
            "max_sites": 8,
        },
        "teacher": {"name": "emt", "max_steps": 200},
        "labels": {"relax_fraction": 0.5, "relax_min": 4},
        "model": {"n_members": 2, "hidden": 16, "layers": 2, "cutoff": 5.0, "epochs": 8},
        "executor": {"kind": "inline"},
    }


def toy_config() -> dict:
    return yaml.safe_load(TOY.read_text())


# --- Store back-ends: a real SQLite file and a real PostgreSQL server ------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args: list[str]) -> list[str]:
    # initdb refuses to run as root; the Debian package's `postgres` user owns the server.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server on a free loopback port for the whole session; yields the
    URL of its `postgres` database. Skips only where no server binaries are installed."""
    import glob
    import tempfile

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
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
    subprocess.run(_as_postgres([*initdb, "--no-sync"]), check=True, capture_output=True)
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = str(bindir / "pg_ctl")
    start = [pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-o", opts, "start"]
    subprocess.run(_as_postgres(start), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        stop = [pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]
        subprocess.run(_as_postgres(stop), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def new_postgres_database(server_url: str) -> str:
    """A new, empty database on the session's server, so that tests never see each other."""
    import uuid

    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:16]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as con:
        con.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """An empty store of each kind: a SQLite file, and a fresh database on the server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return new_postgres_database(request.getfixturevalue("postgres_server"))
