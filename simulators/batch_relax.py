"""Relax many structures at once: one optimizer per structure, one model call per step.

Each structure keeps its own ASE optimizer (FIRE or BFGS) on its own FrechetCellFilter,
exactly as in the sequential path; only the model evaluation is shared. Every step, all
structures still relaxing are evaluated in one batched call, their answers handed to
their atoms as single-point results, and each optimizer takes its own step. Structures
that converge, fail or run out of steps leave the batch, and waiting ones take their
place, so the batch stays full. Because the optimizer and filter are ASE's own, a
batched relaxation follows the same path as the sequential one up to float noise.

Lanes: a model that says it may be called from several threads at once
(``concurrent = True``) is driven by one lane per torch thread, each lane a batch of its
own with one intra-op thread, pulling from the same queue. On a few CPU cores this beats
one big batch on all threads: e3nn's per-edge tensors of a large batch outgrow the cache,
OpenMP's barriers in many small ops idle the cores (and collapse when another process
competes for them), and the Python work of ASE's optimizers runs while the other lane's
model call holds no GIL.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from pymatgen.core import Structure

from simulators.batch_models import BatchModel, Evaluation
from simulators.cell_filter import FastFrechetCellFilter
from simulators.outcome import (
    check_step,
    failed_result,
    final_result,
    initial_volume,
    prepare_atoms,
)
from simulators.records import RelaxResult
from simulators.relax import optimizer_for
from simulators.settings import RelaxSettings

logger = logging.getLogger(__name__)


@dataclass
class _Slot:
    """One structure in flight."""

    index: int
    structure: Structure
    atoms: Atoms
    optimizer: Any
    volume0: float
    t0: float
    steps: int = 0
    fresh: bool = True  # not yet evaluated at its starting geometry
    error: BaseException | None = field(default=None)


class _Source:
    """The input structures, numbered, handed out one at a time to any lane."""

    def __init__(self, structures: Iterable[Structure]) -> None:
        self._items = enumerate(structures)
        # The input may be a lazy generator: never advance it from two threads at once.
        self._lock = threading.Lock()

    def take(self) -> tuple[int, Structure] | None:
        with self._lock:
            return next(self._items, None)


def relax_batched(
    structures: Iterable[Structure],
    model: BatchModel,
    settings: RelaxSettings,
    simulator: str,
    batch_size: int = 32,
    lanes: int | None = None,
) -> Iterator[tuple[int, RelaxResult]]:
    """Yield ``(input index, result)`` as each structure finishes (completion order).

    ``batch_size`` structures are in flight at once, split over ``lanes`` (default: one
    per torch thread when the model is ``concurrent``, else one). ``wall_s`` of a result
    is the time from the structure joining a batch to its end: the structures in a batch
    share that time, so it is not a per-structure cost.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if lanes is None:
        lanes = _default_lanes(model)
    if lanes < 1:
        raise ValueError(f"lanes must be >= 1, got {lanes}")
    lanes = min(lanes, batch_size)
    source = _Source(structures)
    if lanes == 1:
        yield from _lane(source, model, settings, simulator, batch_size)
    else:
        yield from _run_lanes(source, model, settings, simulator, batch_size, lanes)


def _default_lanes(model: BatchModel) -> int:
    if not getattr(model, "concurrent", False):
        return 1
    import torch

    return max(1, torch.get_num_threads())


def _run_lanes(
    source: _Source,
    model: BatchModel,
    settings: RelaxSettings,
    simulator: str,
    batch_size: int,
    lanes: int,
) -> Iterator[tuple[int, RelaxResult]]:
    import torch

    threads = torch.get_num_threads()
    done: queue.Queue = queue.Queue()
    stop = threading.Event()
    sizes = [batch_size // lanes + (i < batch_size % lanes) for i in range(lanes)]

    alive = [lanes]
    alive_lock = threading.Lock()

    def work(size: int) -> None:
        widened = False

        def widen_when_alone() -> None:
            # The last lane still relaxing gets every thread: the others' cores are idle.
            nonlocal widened
            if not widened and alive[0] == 1:
                torch.set_num_threads(threads)
                widened = True

        try:
            # One intra-op thread per lane: the lanes themselves use the cores.
            torch.set_num_threads(1)
            for pair in _lane(source, model, settings, simulator, size, stop, widen_when_alone):
                done.put(("result", pair))
        except BaseException as e:  # a bug, not a structure's failure: re-raised below
            done.put(("error", e))
        finally:
            with alive_lock:
                alive[0] -= 1
            done.put(("end", None))

    workers = [
        threading.Thread(target=work, args=(size,), name=f"relax-lane-{i}", daemon=True)
        for i, size in enumerate(sizes)
    ]
    for worker in workers:
        worker.start()
    running = len(workers)
    try:
        while running:
            kind, payload = done.get()
            if kind == "end":
                running -= 1
            elif kind == "error":
                raise payload
            else:
                yield payload
    finally:
        # Also reached when the consumer stops early: the lanes stop after their step.
        stop.set()
        for worker in workers:
            worker.join()
        # set_num_threads in a lane also sets MKL's process-wide count; restore ours.
        torch.set_num_threads(threads)


def _lane(
    source: _Source,
    model: BatchModel,
    settings: RelaxSettings,
    simulator: str,
    batch_size: int,
    stop: threading.Event | None = None,
    each_step: Callable[[], None] | None = None,
) -> Iterator[tuple[int, RelaxResult]]:
    """One batch kept full from the source until the source runs dry and the batch ends
    (or ``stop`` is set: the consumer went away). ``each_step`` runs before every step."""
    active: list[_Slot] = []
    exhausted = False
    while stop is None or not stop.is_set():
        if each_step is not None:
            each_step()
        while not exhausted and len(active) < batch_size:
            item = source.take()
            if item is None:
                exhausted = True
                break
            index, structure = item
            slot_or_result = _admit(index, structure, settings, simulator)
            if isinstance(slot_or_result, RelaxResult):
                yield index, slot_or_result
            else:
                active.append(slot_or_result)
        if not active:
            if exhausted:
                return
            continue
        for slot in active:
            if not slot.fresh:
                _step(slot)
        _evaluate(model, active)
        still: list[_Slot] = []
        for slot in active:
            slot.fresh = False
            result = _judge(slot, settings, simulator)
            if result is None:
                still.append(slot)
            else:
                yield slot.index, result
        active = still


def _admit(
    index: int, structure: Structure, settings: RelaxSettings, simulator: str
) -> _Slot | RelaxResult:
    t0 = time.perf_counter()
    try:
        atoms = prepare_atoms(structure, settings)
        return _Slot(
            index=index,
            structure=structure,
            atoms=atoms,
            optimizer=optimizer_for(atoms, settings, _FrechetOncePerEvaluation),
            volume0=initial_volume(atoms),
            t0=t0,
        )
    except Exception as e:
        return failed_result(structure, e, simulator, None, 0, t0)


class _FrechetOncePerEvaluation(FastFrechetCellFilter):
    """The cell filter, its generalised forces worked out once per model answer.

    The convergence test and the optimizer's step both ask for them. Every answer arrives
    as a new single-point calculator, so its identity marks when the cached forces go
    stale.
    """

    _cached: tuple[object, np.ndarray] | None = None

    def get_forces(self, **kwargs):
        calc = self.atoms.calc
        if kwargs or calc is None:
            return super().get_forces(**kwargs)
        if self._cached is None or self._cached[0] is not calc:
            self._cached = (calc, super().get_forces())
        return self._cached[1].copy()


def _step(slot: _Slot) -> None:
    # The same call ASE's irun makes between evaluations; the optimizer reads forces from
    # the single-point results attached at the current geometry.
    try:
        slot.optimizer.step()
        slot.optimizer.nsteps += 1
        slot.steps = slot.optimizer.nsteps
    except Exception as e:
        slot.error = e


def _evaluate(model: BatchModel, slots: list[_Slot]) -> None:
    """One model call for every healthy slot; if the batch call fails, find the culprit."""
    healthy = [s for s in slots if s.error is None]
    if not healthy:
        return
    try:
        evaluations = model.evaluate([s.atoms for s in healthy])
    except Exception as e:
        logger.debug("batched call failed (%s); evaluating %d one by one", e, len(healthy))
        for slot in healthy:
            try:
                _attach(slot.atoms, model.evaluate([slot.atoms])[0])
            except Exception as err:
                slot.error = err
        return
    for slot, evaluation in zip(healthy, evaluations, strict=True):
        _attach(slot.atoms, evaluation)


def _attach(atoms: Atoms, ev: Evaluation) -> None:
    atoms.calc = SinglePointCalculator(
        atoms, energy=ev.energy, free_energy=ev.energy, forces=ev.forces, stress=ev.stress
    )


def _judge(slot: _Slot, settings: RelaxSettings, simulator: str) -> RelaxResult | None:
    """The finished result, a failure, or None while the structure keeps relaxing."""
    try:
        if slot.error is not None:
            raise slot.error
        converged = bool(slot.optimizer.converged())
        elapsed = time.perf_counter() - slot.t0
        check_step(slot.atoms, slot.atoms.get_forces(), slot.volume0, settings, elapsed, converged)
        if not converged and slot.steps < settings.max_steps:
            return None
        return final_result(
            slot.atoms, slot.volume0, settings, simulator, converged, slot.steps, elapsed
        )
    except Exception as e:
        return failed_result(slot.structure, e, simulator, slot.atoms, slot.steps, slot.t0)
