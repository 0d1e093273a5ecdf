"""Shared by sequential and batched relaxation: set-up, per-step checks, and the result.

Both paths use these, so a structure fails for the same reasons, with the same words, and
succeeds with the same numbers whichever way it was relaxed.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import PropertyNotImplementedError
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from simulators.magnetism import set_initial_moments
from simulators.records import RelaxResult
from simulators.sanity import energy_too_low, non_finite, out_of_time, too_close, volume_blown
from simulators.settings import RelaxSettings

logger = logging.getLogger(__name__)

_MAX_ERROR_CHARS = 300


class Insane(Exception):
    """A sanity check failed; the message is the reason recorded on the result."""


def require(reason: str | None) -> None:
    """Raise Insane with `reason` when a sanity check returned one."""
    if reason is not None:
        raise Insane(reason)


def prepare_atoms(structure: Structure, settings: RelaxSettings) -> Atoms:
    """ASE atoms for ``structure``, refused (Insane) if it cannot be simulated at all."""
    if len(structure) == 0:
        raise Insane("empty structure")
    if not structure.is_ordered:
        raise Insane("structure is disordered (partial occupancy); order it before simulating")
    atoms = AseAtomsAdaptor.get_atoms(structure)
    require(too_close(atoms, settings.min_distance))
    if settings.spin_polarized:
        set_initial_moments(atoms)
    return atoms


def initial_volume(atoms: Atoms) -> float:
    """The volume the blow-up check compares against; 0 for non-periodic atoms (no check)."""
    return atoms.get_volume() if atoms.pbc.all() else 0.0


def check_step(
    atoms: Atoms,
    forces: np.ndarray,
    volume0: float,
    settings: RelaxSettings,
    elapsed_s: float,
    converged: bool,
) -> None:
    """Stop early instead of burning max_steps on a calculation that already broke.

    The wall-time limit only stops a relaxation that still has steps to take: one that
    converged just as time ran out has its answer.
    """
    require(non_finite("forces", forces))
    require(volume_blown(atoms, volume0, settings.max_volume_ratio))
    require(too_close(atoms, settings.min_distance))
    if not converged:
        require(out_of_time(elapsed_s, settings.max_seconds))


def final_result(
    atoms: Atoms,
    volume0: float,
    settings: RelaxSettings,
    simulator: str,
    converged: bool,
    steps: int,
    wall_s: float,
) -> RelaxResult:
    """The result at the atoms' current geometry (their calculator holds its numbers)."""
    energy = float(atoms.get_potential_energy())
    forces = atoms.get_forces()
    require(non_finite("energy", energy))
    require(non_finite("forces", forces))
    energy_per_atom = energy / len(atoms)
    require(energy_too_low(energy_per_atom, settings.min_energy_per_atom))
    require(too_close(atoms, settings.min_distance))
    require(volume_blown(atoms, volume0, settings.max_volume_ratio))
    stress = stress_gpa(atoms) if atoms.pbc.all() else None
    if stress is not None:
        require(non_finite("stress", np.array(stress)))
    return RelaxResult(
        simulator=simulator,
        structure=to_structure(atoms),
        energy=energy,
        energy_per_atom=energy_per_atom,
        forces_max=float(np.linalg.norm(forces, axis=1).max()),
        stress=stress,
        converged=bool(converged),
        steps=steps,
        wall_s=wall_s,
    )


def failed_result(
    structure: Structure,
    error: BaseException,
    simulator: str,
    atoms: Atoms | None,
    steps: int,
    t0: float,
) -> RelaxResult:
    """A failure as data: the reason, the steps taken and the last geometry if any."""
    if isinstance(error, Insane):
        reason = str(error)
    else:
        reason = f"{type(error).__name__}: {error}"
    reason = reason[:_MAX_ERROR_CHARS]
    logger.debug("%s failed on %s: %s", simulator, structure.composition.formula, reason)
    return RelaxResult(
        simulator=simulator,
        structure=safe_structure(atoms),
        energy=None,
        energy_per_atom=None,
        forces_max=None,
        stress=None,
        converged=False,
        steps=steps,
        wall_s=time.perf_counter() - t0,
        error=reason,
    )


def stress_gpa(atoms: Atoms) -> tuple[float, ...] | None:
    """The Voigt stress in GPa, or None when the calculator does not compute stress."""
    try:
        stress = atoms.get_stress(voigt=True)
    except PropertyNotImplementedError:
        return None
    return tuple(float(s) / units.GPa for s in stress)


def to_structure(atoms: Atoms) -> Structure:
    """The geometry of `atoms` as a pymatgen Structure, without calculator results or initial
    magnetic moments as site properties."""
    # Convert a calculator-free copy without the starting moments, so neither calculator
    # results (magmoms, charges) nor inputs leak into site properties: a plain geometry.
    plain = atoms.copy()
    if plain.has("initial_magmoms"):
        plain.set_initial_magnetic_moments(None)
    return AseAtomsAdaptor.get_structure(plain)


def safe_structure(atoms: Atoms | None) -> Structure | None:
    """`to_structure`, or None for no atoms or a geometry too broken to convert."""
    if atoms is None:
        return None
    try:
        return to_structure(atoms)
    except Exception:  # a geometry too broken to convert is simply absent
        return None
