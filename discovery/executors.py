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
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymatgen.core import Structure

from discovery.config import ConfigError

log = logging.getLogger(__name__)

_CONNECT_TIMEOUT = "5s"


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


def _failure(spec: SimulatorSpec, structure: Structure, error: BaseException):
    from simulators.outcome import failed_result

    return failed_result(structure, error, spec.name, None, 0, time.perf_counter())


class DaskExecutor:
    """Relaxations on a Dask cluster: the scheduler at `address`, or a LocalCluster of
    `workers` single-threaded worker processes started here."""

    def __init__(self, address: str | None = None, workers: int = 2, retries: int = 2) -> None:
        from distributed import Client, LocalCluster

        self.retries = retries
        self._cluster = None
        if address is None:
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
        self, spec: SimulatorSpec, structures: Sequence[Structure]
    ) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        run = uuid.uuid4().hex[:8]
        futures = {
            self.client.submit(
                relax_one, spec, structure, key=f"relax-{run}-{i}", retries=self.retries, pure=False
            ): i
            for i, structure in enumerate(structures)
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
