"""Run one ASE calculator on one pymatgen Structure, turning every failure into a result."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ase import Atoms
from ase.calculators.calculator import BaseCalculator
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS, FIRE
from pymatgen.core import Structure

from simulators.cell_filter import FastFrechetCellFilter
from simulators.outcome import (
    check_step,
    failed_result,
    final_result,
    initial_volume,
    prepare_atoms,
)
from simulators.records import RelaxResult
from simulators.settings import RelaxSettings

logger = logging.getLogger(__name__)

OPTIMIZERS = {"FIRE": FIRE, "BFGS": BFGS}


@dataclass
class _Progress:
    """What is known so far, so a failure mid-run can still report steps and geometry."""

    atoms: Atoms | None = None
    steps: int = 0


def relax_structure(
    structure: Structure,
    calculator: BaseCalculator,
    settings: RelaxSettings,
    simulator: str = "custom",
) -> RelaxResult:
    """Relax positions (and the cell when ``settings.relax_cell``); never raises for failures.

    Calculator exceptions, NaN/inf, atoms closer than ``min_distance``, volume blow-up,
    absurdly low energies and the wall-time limit all come back as a result with
    ``ok == False``.
    """
    return _run(structure, calculator, settings, simulator, relax=True)


def single_point(
    structure: Structure,
    calculator: BaseCalculator,
    settings: RelaxSettings,
    simulator: str = "custom",
) -> RelaxResult:
    """Energy, forces and stress at the given geometry, with the same sanity checks."""
    return _run(structure, calculator, settings, simulator, relax=False)


def optimizer_for(
    atoms: Atoms,
    settings: RelaxSettings,
    cell_filter: type[FrechetCellFilter] = FastFrechetCellFilter,
):
    """The configured ASE optimizer on the atoms, or on their ``cell_filter`` (ASE's
    FrechetCellFilter, see ``simulators.cell_filter``) when the cell relaxes too."""
    # A molecule or slab has no full cell to relax; relax the atoms only.
    periodic = bool(atoms.pbc.all())
    target = cell_filter(atoms) if settings.relax_cell and periodic else atoms
    opt = OPTIMIZERS[settings.optimizer](target, logfile=None)
    # irun() sets fmax itself; the batched path calls converged() without irun().
    opt.fmax = settings.fmax
    return opt


def _run(
    structure: Structure,
    calculator: BaseCalculator,
    settings: RelaxSettings,
    simulator: str,
    relax: bool,
) -> RelaxResult:
    t0 = time.perf_counter()
    progress = _Progress()
    try:
        return _evaluate(structure, calculator, settings, simulator, relax, t0, progress)
    except Exception as e:  # any calculator failure is data, not a crash
        return failed_result(structure, e, simulator, progress.atoms, progress.steps, t0)


def _evaluate(
    structure: Structure,
    calculator: BaseCalculator,
    settings: RelaxSettings,
    simulator: str,
    relax: bool,
    t0: float,
    progress: _Progress,
) -> RelaxResult:
    atoms = prepare_atoms(structure, settings)
    volume0 = initial_volume(atoms)

    # A reused calculator must not answer from the previous structure's cached results.
    # (BaseCalculator has no reset(); such calculators manage their own state.)
    reset = getattr(calculator, "reset", None)
    if callable(reset):
        reset()
    atoms.calc = calculator

    converged = True
    if relax:
        progress.atoms = atoms
        opt = optimizer_for(atoms, settings)
        for step_converged in opt.irun(fmax=settings.fmax, steps=settings.max_steps):
            converged = step_converged
            progress.steps = opt.nsteps
            elapsed = time.perf_counter() - t0
            check_step(atoms, atoms.get_forces(), volume0, settings, elapsed, converged)
        progress.steps = opt.nsteps

    return final_result(
        atoms,
        volume0,
        settings,
        simulator,
        converged,
        progress.steps,
        time.perf_counter() - t0,
    )
