"""Run one ASE calculator on one pymatgen Structure, turning every failure into a result."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import BaseCalculator, PropertyNotImplementedError
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS, FIRE
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from simulators.records import RelaxResult
from simulators.sanity import energy_too_low, non_finite, too_close, volume_blown
from simulators.settings import RelaxSettings

logger = logging.getLogger(__name__)

_OPTIMIZERS = {"FIRE": FIRE, "BFGS": BFGS}
_MAX_ERROR_CHARS = 300


class _Insane(Exception):
    """A sanity check failed; the message is the reason recorded on the result."""


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

    Calculator exceptions, NaN/inf, atoms closer than ``min_distance``, volume blow-up
    and absurdly low energies all come back as a result with ``ok == False``.
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
    except _Insane as e:
        reason = str(e)
    except Exception as e:  # any calculator failure is data, not a crash
        reason = f"{type(e).__name__}: {e}"
    reason = reason[:_MAX_ERROR_CHARS]
    logger.debug("%s failed on %s: %s", simulator, structure.composition.formula, reason)
    return RelaxResult(
        simulator=simulator,
        structure=_safe_structure(progress.atoms),
        energy=None,
        energy_per_atom=None,
        forces_max=None,
        stress=None,
        converged=False,
        steps=progress.steps,
        wall_s=time.perf_counter() - t0,
        error=reason,
    )


def _evaluate(
    structure: Structure,
    calculator: BaseCalculator,
    settings: RelaxSettings,
    simulator: str,
    relax: bool,
    t0: float,
    progress: _Progress,
) -> RelaxResult:
    if len(structure) == 0:
        raise _Insane("empty structure")
    if not structure.is_ordered:
        raise _Insane("structure is disordered (partial occupancy); order it before simulating")
    atoms = AseAtomsAdaptor.get_atoms(structure)
    _require(too_close(atoms, settings.min_distance))
    periodic = bool(atoms.pbc.all())
    initial_volume = atoms.get_volume() if periodic else 0.0

    # A reused calculator must not answer from the previous structure's cached results.
    # (BaseCalculator has no reset(); such calculators manage their own state.)
    reset = getattr(calculator, "reset", None)
    if callable(reset):
        reset()
    atoms.calc = calculator

    converged = True
    if relax:
        progress.atoms = atoms
        # A molecule or slab has no full cell to relax; relax the atoms only.
        target = FrechetCellFilter(atoms) if settings.relax_cell and periodic else atoms
        opt = _OPTIMIZERS[settings.optimizer](target, logfile=None)
        for step_converged in opt.irun(fmax=settings.fmax, steps=settings.max_steps):
            converged = step_converged
            progress.steps = opt.nsteps
            # Stop early instead of burning max_steps on a calculation that already broke.
            _require(non_finite("forces", atoms.get_forces()))
            _require(volume_blown(atoms, initial_volume, settings.max_volume_ratio))
            _require(too_close(atoms, settings.min_distance))
        progress.steps = opt.nsteps

    energy = float(atoms.get_potential_energy())
    forces = atoms.get_forces()
    _require(non_finite("energy", energy))
    _require(non_finite("forces", forces))
    energy_per_atom = energy / len(atoms)
    _require(energy_too_low(energy_per_atom, settings.min_energy_per_atom))
    _require(too_close(atoms, settings.min_distance))
    _require(volume_blown(atoms, initial_volume, settings.max_volume_ratio))
    stress = _stress_gpa(atoms) if periodic else None
    if stress is not None:
        _require(non_finite("stress", np.array(stress)))

    return RelaxResult(
        simulator=simulator,
        structure=_to_structure(atoms),
        energy=energy,
        energy_per_atom=energy_per_atom,
        forces_max=float(np.linalg.norm(forces, axis=1).max()),
        stress=stress,
        converged=bool(converged),
        steps=progress.steps,
        wall_s=time.perf_counter() - t0,
    )


def _require(reason: str | None) -> None:
    if reason is not None:
        raise _Insane(reason)


def _stress_gpa(atoms: Atoms) -> tuple[float, ...] | None:
    try:
        stress = atoms.get_stress(voigt=True)
    except PropertyNotImplementedError:
        return None
    return tuple(float(s) / units.GPa for s in stress)


def _to_structure(atoms: Atoms) -> Structure:
    # Convert a calculator-free copy so calculator results (magmoms, charges) do not leak
    # into site properties and the structure stays a plain geometry.
    return AseAtomsAdaptor.get_structure(atoms.copy())


def _safe_structure(atoms: Atoms | None) -> Structure | None:
    if atoms is None:
        return None
    try:
        return _to_structure(atoms)
    except Exception:  # a geometry too broken to convert is simply absent
        return None
