"""Validation in a pool of local worker processes: the default executor."""

from __future__ import annotations

import os

import pytest
from conftest import REPO
from test_dask import strained_copper

from discovery.config import parse_config
from discovery.engine.executors import PoolExecutor, SimulatorSpec
from simulators import RelaxSettings, Simulator


@pytest.fixture
def workers_see_tests(monkeypatch):
    # Spawned workers import the test calculators by name, as they would a user's.
    path = os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)


def test_pool_is_the_default_and_workers_default_to_the_cores():
    config = parse_config({"name": "x", "chemical_systems": ["Cu-Au"]})
    assert config.executor.kind == "pool" and config.executor.workers is None


def test_pool_results_equal_relaxing_in_process():
    structures = strained_copper(5)
    spec = SimulatorSpec("emt", RelaxSettings(fmax=0.01))
    pool = PoolExecutor(workers=2, retries=0)
    try:
        results = dict(pool.relax_as_completed(spec, structures))
    finally:
        pool.close()
    inline = [Simulator("emt", RelaxSettings(fmax=0.01)).relax(s) for s in structures]
    assert sorted(results) == list(range(5))
    for k, expected in enumerate(inline):
        assert results[k].ok and results[k].energy == pytest.approx(expected.energy, abs=1e-10)


def test_a_worker_that_dies_is_replaced_and_its_task_recorded_as_failed(workers_see_tests):
    # The 3.45 Å cell kills its worker every time; the others relax on a rebuilt pool.
    structures = strained_copper(4)
    spec = SimulatorSpec("slow_calculators:dying", RelaxSettings(), options={"below": 42.0})
    pool = PoolExecutor(workers=2, retries=1)
    try:
        results = dict(pool.relax_as_completed(spec, structures))
    finally:
        pool.close()
    assert sorted(results) == [0, 1, 2, 3]
    assert not results[0].ok and "worker process died 2 times" in results[0].error
    assert all(results[k].ok for k in (1, 2, 3))
