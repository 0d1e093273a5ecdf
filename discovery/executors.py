"""Where relaxations run: in the campaign's own process, or as tasks on a Dask cluster.

Both yield ``(input index, RelaxResult)`` in the order results exist, so the validate stage
commits each one as it arrives whichever executor ran it. On Dask every structure is one task;
a worker that dies mid-task has its task rescheduled on another worker by the scheduler, a
task that raises is retried `retries` times, and what still fails comes back as a failed
result with its reason, never as an exception, so the campaign goes on.
"""

from __future__ import annotations

import logging
import pickle
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymatgen.core import Structure

from discovery.config import ConfigError

log = logging.getLogger(__name__)

_CONNECT_TIMEOUT = "5s"

# Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536 so that freed memory goes back
# to the OS early. Setting it switches off glibc's dynamic mmap threshold: every torch buffer
# over 128 KiB is then mapped and page-faulted afresh (15x the page faults), and the 40 CHGNet
# relaxations of benchmarks/dask_scale.py took 78 s on one worker instead of 45 s, the dense
# cells (big graphs) the worst hit. Relaxation tasks are small, so workers keep glibc's
# defaults, as the in-process path has them.
_NANNY_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
# The same for workers started by a batch job's `dask worker` (read from its environment).
_NANNY_TRIM_ENV = "DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON='{\"MALLOC_TRIM_THRESHOLD_\": None}'"


@dataclass(frozen=True)
class SimulatorSpec:
    """Everything needed to build the campaign's simulator in another process."""

    name: str
    settings: Any  # simulators.RelaxSettings (imported lazily: torch stays out of the CLI)
    device: str = "cpu"
    options: dict[str, Any] = field(default_factory=dict)

    def build(self):
        from simulators import Simulator

        return Simulator(self.name, self.settings, device=self.device, options=dict(self.options))


# One simulator per spec per worker process: loading a potential's weights once, not per task.
_SIMULATORS: dict[bytes, Any] = {}


def relax_one(spec: SimulatorSpec, structure: Structure):
    """A Dask task: relax one structure with the spec's simulator (cached in this process)."""
    key = pickle.dumps(spec)
    simulator = _SIMULATORS.get(key)
    if simulator is None:
        simulator = _SIMULATORS[key] = spec.build()
    return simulator.relax(structure)


# Within this distance of each other, atoms are an edge of the potential's graph (CHGNet's
# atom graph cutoff is 5 Å; SevenNet's 5 Å too).
_COST_CUTOFF = 5.0


def expected_cost(structure: Structure, cutoff: float = _COST_CUTOFF) -> int:
    """A relaxation's expected relative run time, before running it: the number of atom pairs
    within `cutoff`. A message-passing potential's step costs about that many edges; over the
    40 CHGNet relaxations of generated candidates in benchmarks/dask_scale.py it correlated
    0.91 with the measured time, the atom count 0.15."""
    centres, _, _, _ = structure.get_neighbor_list(cutoff)
    return len(structure) + len(centres)


def _failure(spec: SimulatorSpec, structure: Structure, error: BaseException):
    from simulators.outcome import failed_result

    return failed_result(structure, error, spec.name, None, 0, time.perf_counter())


def jobqueue_cluster(ex):
    """A dask-jobqueue SLURMCluster or PBSCluster from the `executor` config section (kind
    slurm | pbs), not yet scaled: no job is submitted until `scale`."""
    try:
        import dask_jobqueue
    except ImportError:
        raise ConfigError(
            f"invalid value for 'executor.kind': {ex.kind} needs dask-jobqueue, which is not "
            "installed (pip install -e '.[hpc]')"
        ) from None
    cls = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}[ex.kind]
    processes = ex.processes or ex.cores
    threads = ex.cores // processes
    return cls(
        cores=ex.cores,
        processes=processes,
        memory=ex.memory,
        walltime=ex.walltime,
        queue=ex.queue,
        account=ex.account,
        job_name="discovery-worker",
        job_extra_directives=list(ex.job_extra_directives),
        # A worker's threads share its cores; BLAS and torch threads on top of them would
        # oversubscribe the node (tiny matrices in a relaxation slow down several-fold).
        job_script_prologue=[
            f"export OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads}",
            f"export {_NANNY_TRIM_ENV}",
            *ex.job_script_prologue,
        ],
        python=ex.python or sys.executable,
        interface=ex.interface,
        dashboard_address=None,
    )


def executor_for(ex):
    """The executor the `executor` config section asks for; None: relax in this process."""
    if ex.kind == "inline":
        return None
    if ex.kind == "dask":
        return DaskExecutor(ex.address, ex.workers, ex.retries)
    cluster = jobqueue_cluster(ex)
    cluster.scale(jobs=ex.jobs)
    log.info("submitted %d %s job(s) for Dask workers", ex.jobs, ex.kind)
    return DaskExecutor(retries=ex.retries, cluster=cluster)


class DaskExecutor:
    """Relaxations on a Dask cluster: the scheduler at `address`, a LocalCluster of `workers`
    single-threaded worker processes started here, or a `cluster` built by the caller (a
    dask-jobqueue one), which this executor then owns and closes."""

    def __init__(
        self, address: str | None = None, workers: int = 2, retries: int = 2, cluster=None
    ) -> None:
        import dask
        from distributed import Client, LocalCluster

        self.retries = retries
        self._cluster = cluster
        if cluster is not None:
            self.client = Client(cluster)
        elif address is None:
            with dask.config.set({_NANNY_TRIM: None}):  # read when each nanny starts
                self._cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
            self.client = Client(self._cluster)
        else:
            try:
                self.client = Client(address, timeout=_CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as err:
                # Named like a config error: the address is what the user must fix.
                raise ConfigError(
                    f"invalid value for 'executor.address': no Dask scheduler answers at "
                    f"{address} ({type(err).__name__})"
                ) from None
        log.info("dask executor: %s", self.client)

    def relax_as_completed(
        self,
        spec: SimulatorSpec,
        structures: Sequence[Structure],
        costs: Sequence[int] | None = None,
    ) -> Iterator[tuple[int, Any]]:
        """Submit every structure, yield results as they finish. The costliest start first
        (`costs`, by default `expected_cost`): one long relaxation started last keeps one
        worker busy while the others idle (longest-processing-time-first order)."""
        from distributed import as_completed

        if costs is None:
            costs = [expected_cost(s) for s in structures]
        run = uuid.uuid4().hex[:8]
        # Submitted in that order too, so that a worker which starts before the last
        # submission reaches the scheduler still starts on a costly one.
        order = sorted(range(len(structures)), key=lambda i: -costs[i])
        futures = {
            self.client.submit(
                relax_one,
                spec,
                structures[i],
                key=f"relax-{run}-{i}",
                retries=self.retries,
                pure=False,
                priority=int(costs[i]),  # higher runs first
            ): i
            for i in order
        }
        for future in as_completed(futures):
            index = futures.pop(future)
            try:
                result = future.result()
            except Exception as err:  # KilledWorker after repeated deaths, or a task error
                log.warning("relaxation %d failed on the cluster: %s", index, err)
                result = _failure(spec, structures[index], err)
            yield index, result

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
