"""Where relaxations run: in the campaign's own process (`InlineExecutor`), in a pool of local
worker processes (`PoolExecutor`), or as tasks on a Dask cluster (`DaskExecutor`); each is an
`Executor`.

All yield ``(input index, RelaxResult)`` in the order results exist, so the validate stage
commits each one as it arrives whichever executor ran it. Every structure is one task; a
worker that dies mid-task has its task rerun (by the Dask scheduler, or on a fresh local pool),
a task that raises or loses its worker is retried `retries` times, and what still fails comes
back as a failed result with its reason, never as an exception, so the campaign goes on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pickle
import sys
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pymatgen.core import Structure

from discovery.config import ConfigError
from simulators.registry import Backend, ensure_registered

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from simulators import RelaxResult, Simulator

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
    # The back-end travels with the spec: one registered at run time exists only in the
    # process that registered it, not in a spawned worker or on a Dask cluster.
    backend: Backend | None = None

    def build(self):
        from simulators import Simulator

        if self.backend is not None:
            ensure_registered(self.backend)
        return Simulator(self.name, self.settings, device=self.device, options=dict(self.options))

    def settings_key(self) -> str:
        """A hash of what decides the result (back-end, settings, options), not where it
        runs: two campaigns whose rung has the same key compute a structure the same way."""
        settings: Any = self.settings
        if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
            settings = dataclasses.asdict(settings)
        text = json.dumps([self.name, settings, self.options], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def spec_for(sim, relax_cell: bool) -> SimulatorSpec:
    """A simulator config section (a campaign's rung, a pretraining teacher) as a picklable
    recipe, for executors in other processes."""
    # Imported here so that `discovery status` and friends never load torch models.
    from simulators import RelaxSettings, get_backend

    settings = RelaxSettings(
        fmax=sim.fmax,
        max_steps=sim.max_steps,
        optimizer=sim.optimizer,
        relax_cell=relax_cell,
        min_distance=sim.min_distance,
        max_volume_ratio=sim.max_volume_ratio,
        min_energy_per_atom=sim.min_energy_per_atom,
        max_seconds=sim.max_seconds,
        spin_polarized=sim.spin_polarized,
    )
    return SimulatorSpec(
        sim.name,
        settings,
        device=sim.device,
        options=dict(sim.options),
        backend=get_backend(sim.name),
    )


# One simulator per spec per process: loading a potential's weights once, not per task.
_SIMULATORS: dict[bytes, Any] = {}


def cached_simulator(spec: SimulatorSpec) -> Simulator:
    """The spec's simulator, built once in this process."""
    key = pickle.dumps(spec)
    simulator = _SIMULATORS.get(key)
    if simulator is None:
        simulator = _SIMULATORS[key] = spec.build()
    return simulator


def relax_one(spec: SimulatorSpec, structure: Structure):
    """A pool or Dask task: relax one structure with the spec's simulator (cached in this
    process). Python warnings travel back in the result instead of going to the worker's
    stderr, which a local worker shares with the campaign's progress bars."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        result = cached_simulator(spec).relax(structure)
    if not caught:
        return result
    texts = tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    return dataclasses.replace(result, warnings=texts)


class Executor(Protocol):
    """Runs relaxations somewhere and yields each result as soon as it exists."""

    def relax_as_completed(
        self, spec: SimulatorSpec, structures: Sequence[Structure]
    ) -> Iterator[tuple[int, RelaxResult]]:
        """``(input index, result)`` pairs in the order results exist."""
        ...

    def close(self) -> None:
        """Release workers, clusters or pools the executor started."""
        ...


class InlineExecutor:
    """Relaxations one after another in this process (the toy world, tests, debugging): no
    worker to start, and a crash is an ordinary traceback. A structure that fails to relax
    is still a failed result, as the simulator reports it."""

    def relax_as_completed(
        self, spec: SimulatorSpec, structures: Sequence[Structure]
    ) -> Iterator[tuple[int, RelaxResult]]:
        return cached_simulator(spec).relax_as_completed(structures)

    def close(self) -> None:
        """Nothing to release."""


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


def costliest_first(structures: Sequence[Structure], costs: Sequence[int] | None) -> list[int]:
    """Indices of `structures`, the costliest first (`costs`, by default `expected_cost`):
    one long relaxation started last keeps one worker busy while the others idle
    (longest-processing-time-first order)."""
    if costs is None:
        costs = [expected_cost(s) for s in structures]
    return sorted(range(len(structures)), key=lambda i: -costs[i])


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


def default_workers() -> int:
    """One single-threaded worker per core this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # None where the count is unknown


def executor_for(ex) -> Executor:
    """The executor the `executor` config section asks for."""
    if ex.kind == "inline":
        return InlineExecutor()
    if ex.kind == "pool":
        return PoolExecutor(ex.workers or default_workers(), ex.retries)
    if ex.kind == "dask":
        return DaskExecutor(ex.address, ex.workers or default_workers(), ex.retries)
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
        """Submit every structure, yield results as they finish, the costliest started first
        (see `costliest_first`)."""
        from distributed import as_completed

        run = uuid.uuid4().hex[:8]
        # Submitted in that order too, so that a worker which starts before the last
        # submission reaches the scheduler still starts on a costly one.
        order = costliest_first(structures, costs)
        futures = {
            self.client.submit(
                relax_one,
                spec,
                structures[i],
                key=f"relax-{run}-{i}",
                retries=self.retries,
                pure=False,
                priority=len(order) - rank,  # higher runs first
            ): i
            for rank, i in enumerate(order)
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


def _init_pool_worker() -> None:
    # One core per worker: torch and BLAS threads on top of the pool would oversubscribe it.
    from discovery.engine.threads import limit_threads

    limit_threads(1)


class PoolExecutor:
    """Relaxations in `workers` local single-threaded processes (spawned, not forked: the
    campaign process holds torch and open database connections).

    A worker that dies (out of memory, a segfault in compiled code) breaks the whole pool in
    `concurrent.futures`. The pool is then rebuilt; the tasks that were running when it broke
    are suspects and rerun one at a time, so the culprit is known for certain and the innocent
    ones are not blamed, while the tasks still queued go back to the parallel queue. A task
    that kills its worker more than `retries` times, or raises more than `retries` times, is
    a failed result with its reason."""

    def __init__(self, workers: int = 2, retries: int = 2) -> None:
        self.workers = workers
        self.retries = retries
        self._pool: ProcessPoolExecutor | None = None

    def _fresh_pool(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_pool_worker,
        )
        return self._pool

    def relax_as_completed(
        self,
        spec: SimulatorSpec,
        structures: Sequence[Structure],
        costs: Sequence[int] | None = None,
    ) -> Iterator[tuple[int, Any]]:
        """Submit every structure, the costliest first (see `costliest_first`), and yield
        results as they finish."""
        pending = costliest_first(structures, costs)
        attempts = dict.fromkeys(pending, 0)
        suspects: list[int] = []
        while pending or suspects:
            if suspects:
                yield from self._run_alone(spec, structures, suspects, attempts)
            else:
                yield from self._run_parallel(spec, structures, pending, suspects, attempts)

    def _outcome(self, spec, structures, index, err, attempts, retry: list[int], death: bool):
        """A failed attempt: the failed result once out of retries, else None (requeued)."""
        attempts[index] += 1
        if attempts[index] <= self.retries:
            retry.append(index)
            return None
        if death:
            err = RuntimeError(f"worker process died {attempts[index]} times")
        log.warning("relaxation %d failed: %s", index, err)
        return _failure(spec, structures[index], err)

    def _run_alone(self, spec, structures, suspects: list[int], attempts):
        from concurrent.futures.process import BrokenProcessPool

        index = suspects.pop(0)
        pool = self._pool or self._fresh_pool()
        try:
            yield index, pool.submit(relax_one, spec, structures[index]).result()
            return
        except BrokenProcessPool as err:
            self._fresh_pool()
            failed = self._outcome(spec, structures, index, err, attempts, suspects, True)
        except Exception as err:
            failed = self._outcome(spec, structures, index, err, attempts, suspects, False)
        if failed is not None:
            yield index, failed

    def _run_parallel(self, spec, structures, pending: list[int], suspects: list[int], attempts):
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        pool = self._pool or self._fresh_pool()
        futures = {pool.submit(relax_one, spec, structures[i]): i for i in pending}
        pending.clear()
        while futures:
            # Which tasks a worker holds right now: the suspects if the pool breaks.
            running = [i for f, i in futures.items() if f.running()]
            done, _ = wait(futures, timeout=0.5, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                index = futures.pop(future)
                try:
                    yield index, future.result()
                except BrokenProcessPool:
                    broken = True
                    futures[future] = index  # sorted out below with the others
                except Exception as err:
                    failed = self._outcome(spec, structures, index, err, attempts, pending, False)
                    if failed is not None:
                        yield index, failed
            if broken:
                unfinished = set(futures.values())
                blamed = [i for i in running if i in unfinished] or sorted(unfinished)
                log.warning(
                    "a worker process died; %d task(s) rerun alone, %d requeued",
                    len(blamed), len(unfinished) - len(blamed),
                )  # fmt: skip
                suspects.extend(blamed)
                pending.extend(sorted(unfinished - set(blamed)))
                self._fresh_pool()
                return

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
