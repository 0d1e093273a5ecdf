"""Executors: the order tasks go to Dask workers in, and executor.kind slurm | pbs
(dask-jobqueue clusters built from the campaign config).

No batch system here: the HPC tests build the cluster (its scheduler runs in this process) and
read the job script it would submit; nothing is submitted."""

from __future__ import annotations

import os
import sys

import pytest
from conftest import toy_config
from pymatgen.core import Lattice, Structure

from discovery.config import ConfigError, parse_config
from discovery.engine.executors import (
    DaskExecutor,
    SimulatorSpec,
    executor_for,
    expected_cost,
    jobqueue_cluster,
)
from simulators import RelaxSettings

HPC = {
    "queue": "cpu",
    "account": "mat-123",
    "cores": 4,
    "memory": "16GB",
    "walltime": "02:30:00",
    "jobs": 3,
    "python": "/shared/venv/bin/python",
    "job_script_prologue": ["source /shared/venv/bin/activate"],
}


def executor_config(**fields):
    return parse_config({**toy_config(), "executor": fields}).executor


def copper(scale: int, a: float = 3.7) -> Structure:
    cell = Structure(
        Lattice.cubic(a), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    )
    return cell * (scale, 1, 1)


def test_expected_cost_grows_with_atoms_and_density():
    assert expected_cost(copper(2)) > expected_cost(copper(1))
    assert expected_cost(copper(1, a=3.4)) > expected_cost(copper(1, a=4.2))


def test_the_costliest_relaxations_start_first():
    structures = [copper(n) for n in (1, 3, 2, 4)]
    spec = SimulatorSpec("emt", RelaxSettings(fmax=0.05))
    executor = DaskExecutor(workers=1, retries=0)
    try:
        # one worker: results come back in the order the tasks ran
        order = [i for i, _ in executor.relax_as_completed(spec, structures)]
        trim = executor.client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_")
    finally:
        executor.close()
    assert order == [3, 1, 2, 0]
    # glibc's own malloc thresholds, not the nanny's (see discovery/engine/executors.py)
    assert list(trim.values()) == [None]


def job_script(ex) -> str:
    pytest.importorskip("dask_jobqueue")
    cluster = jobqueue_cluster(ex)
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def test_a_slurm_config_makes_the_expected_job_script():
    ex = executor_config(kind="slurm", job_extra_directives=["--constraint=cpu"], **HPC)
    script = job_script(ex)
    for line in (
        "#SBATCH -p cpu",
        "#SBATCH -A mat-123",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=15G",  # dask-jobqueue writes GiB
        "#SBATCH -t 02:30:00",
        "#SBATCH --constraint=cpu",
        "export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1",
        """export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON='{"MALLOC_TRIM_THRESHOLD_": None}'""",
        "source /shared/venv/bin/activate",
    ):
        assert line in script, f"{line!r} not in\n{script}"
    worker = script.strip().splitlines()[-1]
    assert worker.startswith("/shared/venv/bin/python -m distributed.cli.dask_worker tcp://")
    # one single-threaded worker per core, as the LocalCluster runs them
    assert "--nthreads 1" in worker and "--nworkers 4" in worker


def test_a_pbs_config_makes_the_expected_job_script():
    ex = executor_config(kind="pbs", processes=2, **HPC)
    script = job_script(ex)
    for line in (
        "#PBS -q cpu",
        "#PBS -A mat-123",
        "#PBS -l select=1:ncpus=4:mem=15GB",
        "#PBS -l walltime=02:30:00",
        "export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2",
    ):
        assert line in script, f"{line!r} not in\n{script}"
    assert "--nthreads 2" in script and "--nworkers 2" in script


def test_without_dask_jobqueue_the_error_names_executor_kind(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)  # import fails as if absent
    with pytest.raises(ConfigError, match=r"'executor.kind': slurm needs dask-jobqueue.*\[hpc\]"):
        executor_for(executor_config(kind="slurm"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "slurm", "address": "tcp://host:8786"}, "starts its own scheduler"),
        ({"kind": "pbs", "cores": 2, "processes": 4}, r"processes \(4\) exceeds cores \(2\)"),
        ({"kind": "lsf"}, "executor.kind"),
    ],
)
def test_bad_hpc_configs_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message):
        executor_config(**fields)


def test_the_inline_executor_relaxes_in_this_process_with_one_simulator_per_spec():
    from discovery.engine.executors import InlineExecutor, cached_simulator

    executor = executor_for(executor_config(kind="inline"))
    assert isinstance(executor, InlineExecutor)
    spec = SimulatorSpec("emt", RelaxSettings(fmax=0.05, max_steps=50))
    structures = [copper(1, a=3.5), copper(1, a=3.7)]
    results = dict(executor.relax_as_completed(spec, structures))
    assert sorted(results) == [0, 1]
    assert all(r.ok for r in results.values())
    # the two cells relax to the same fcc copper
    assert results[0].energy_per_atom == pytest.approx(results[1].energy_per_atom, abs=1e-3)
    assert cached_simulator(spec) is cached_simulator(SimulatorSpec("emt", spec.settings))
    executor.close()
