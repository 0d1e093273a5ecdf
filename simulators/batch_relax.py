"""Relax many structures at once: one optimizer per structure, one model call per step.

Each structure keeps its own ASE optimizer (FIRE or BFGS) on its own FrechetCellFilter,
exactly as in the sequential path; only the model evaluation is shared. Every step, all
structures still relaxing are evaluated in one batched call, their answers handed to
their atoms as single-point results, and each optimizer takes its own step. Structures
that converge, fail or run out of steps leave the batch, and waiting ones take their
place, so the batch stays full. Because the optimizer and filter are ASE's own, a
batched relaxation follows the same path as the sequential one up to float noise.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from pymatgen.core import Structure

from simulators.batch_models import BatchModel, Evaluation
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


def relax_batched(
    structures: Iterable[Structure],
    model: BatchModel,
    settings: RelaxSettings,
    simulator: str,
    batch_size: int = 32,
) -> Iterator[tuple[int, RelaxResult]]:
    """Yield ``(input index, result)`` as each structure finishes (completion order).

    ``wall_s`` of a result is the time from the structure joining the batch to its end:
    the structures in a batch share that time, so it is not a per-structure cost.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    waiting = deque(enumerate(structures))
    active: list[_Slot] = []
    while waiting or active:
        while waiting and len(active) < batch_size:
            index, structure = waiting.popleft()
            slot_or_result = _admit(index, structure, settings, simulator)
            if isinstance(slot_or_result, RelaxResult):
                yield index, slot_or_result
            else:
                active.append(slot_or_result)
        if not active:
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
            optimizer=optimizer_for(atoms, settings),
            volume0=initial_volume(atoms),
            t0=t0,
        )
    except Exception as e:
        return failed_result(structure, e, simulator, None, 0, t0)


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
