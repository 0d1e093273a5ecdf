"""Validation on a real Dask cluster (a LocalCluster of worker processes on 127.0.0.1)."""

from __future__ import annotations

import os
import signal
import sqlite3

import pytest
from conftest import REPO, cli, toy_config, write_config
from pymatgen.core import Lattice, Structure

from discovery.engine.executors import DaskExecutor, SimulatorSpec
from simulators import RelaxSettings

SLOW_EMT = "slow_calculators:factory"


@pytest.fixture
def workers_see_tests(monkeypatch):
    # Worker processes import the test calculator by name, as a cluster would a user's.
    path = os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)


def strained_copper(n: int) -> list[Structure]:
    return [
        Structure(
            Lattice.cubic(3.45 + 0.04 * i),
            ["Cu"] * 4,
            [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        )
        for i in range(n)
    ]


def test_a_worker_killed_mid_round_loses_nothing(workers_see_tests):
    spec = SimulatorSpec(SLOW_EMT, RelaxSettings(fmax=0.02), options={"delay": 0.05})
    structures = strained_copper(6)
    inline = [spec.build().relax(s) for s in structures]
    executor = DaskExecutor(workers=2, retries=1)
    try:
        pids = executor.client.run(os.getpid)
        victim = next(iter(pids.values()))
        results = {}
        for index, result in executor.relax_as_completed(spec, structures):
            if not results:
                # Kill a worker while tasks are still queued and running.
                os.kill(victim, signal.SIGKILL)
            assert index not in results, "a structure came back twice"
            results[index] = result
    finally:
        executor.close()
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)  # it really died
    assert sorted(results) == list(range(len(structures)))
    for index, result in results.items():
        assert result.ok, result.error
        assert result.energy_per_atom == pytest.approx(inline[index].energy_per_atom, abs=1e-8)


def test_toy_campaign_on_dask_matches_the_inline_run(toy_campaign, tmp_path):
    data = {**toy_config(), "rounds": 2, "executor": {"kind": "dask", "workers": 2}}
    directory = tmp_path / "dask"
    result = cli("run", write_config(tmp_path / "dask.yaml", data), "--dir", directory)
    assert result.returncode == 0, result.stderr[-3000:]
    query = (
        "select c.uid, k.round_index, k.ok, round(k.energy_per_atom, 8) from calculations k "
        "join candidates c on c.id = k.candidate_id where k.round_index < 2 order by c.uid"
    )
    with sqlite3.connect(directory / "campaign.db") as con:
        on_dask = con.execute(query).fetchall()
    with sqlite3.connect(toy_campaign / "campaign.db") as con:
        inline = con.execute(query).fetchall()
    assert on_dask == inline


def test_an_unreachable_scheduler_is_a_clear_error():
    from conftest import _free_port

    from discovery.config import ConfigError

    with pytest.raises(ConfigError, match="'executor.address': no Dask scheduler answers"):
        DaskExecutor(address=f"tcp://127.0.0.1:{_free_port()}")
