"""ASE's FrechetCellFilter with the same maths and fewer matrix functions.

Every relaxation step of a cell relaxation asks the filter for its positions and its
generalised forces (ASE's own loop asks for the forces three times). Stock, each answer
takes a matrix logarithm of the deformation gradient, and each force answer nine Fréchet
derivatives of the matrix exponential, one per strain direction: 1.8 ms for one of each on
a small cell, several ms a step, about a tenth of a SevenNet-0 step on one CPU thread.
Two exact identities remove most of it (0.23 ms for the pair):

- the log of the deformation gradient is known without a logarithm: the optimizer set the
  cell from it, ``F = expm(X)``, so it is kept with the cell it made and only recomputed
  when the cell changes some other way;
- the nine directional derivatives contracted with the cell gradient ``G`` are one
  derivative of the adjoint: ``<Dexp_L(E_mn), G> = Dexp_{L^T}(G)[m, n]``.

Positions, forces and the convergence stress agree with ``FrechetCellFilter`` to rounding
(``tests/test_simulators.py`` checks both against it). Options beyond the defaults (a
strain mask, hydrostatic strain, constant volume) use ASE's code unchanged.
"""

from __future__ import annotations

import numpy as np
from ase.filters import FrechetCellFilter
from ase.stress import full_3x3_to_voigt_6_stress, voigt_6_to_full_3x3_stress
from scipy.linalg import expm_frechet, logm


class FastFrechetCellFilter(FrechetCellFilter):
    """``FrechetCellFilter`` (positions and cell, log-strain cell variables), faster."""

    def __init__(self, atoms, **kwargs) -> None:
        super().__init__(atoms, **kwargs)
        u = self._utility
        self._plain = bool(
            (u.mask3x3 == 1).all()
            and not u.hydrostatic_strain
            and not u.constant_volume
            and u.scalar_pressure == 0.0
        )
        # (the cell, log of its deformation gradient): valid while the cell is unchanged.
        self._log: tuple[np.ndarray, np.ndarray] | None = None

    def _log_deformation(self) -> np.ndarray:
        cell = self.atoms.cell.array
        if self._log is None or not np.array_equal(self._log[0], cell):
            log = logm(self._utility.deform_grad(self.atoms.cell))
            self._log = (cell.copy(), np.real(log))
        return self._log[1]

    def get_positions(self):
        if not self._plain:
            return super().get_positions()
        n = len(self.atoms)
        deform = self._utility.deform_grad(self.atoms.cell)
        pos = np.empty((n + 3, 3))
        pos[:n] = np.linalg.solve(deform, self.atoms.positions.T).T
        # ASE takes logm(n F) = log(n) I + log F (n I commutes with F).
        pos[n:] = (self._log_deformation() + np.log(float(n)) * np.eye(3)) * self.exp_cell_factor
        return pos

    # ase's Filter names the argument `positions`, its UnitCellFilter `new`: no name fits both.
    def set_positions(self, new, **kwargs):  # type: ignore[override]
        super().set_positions(new, **kwargs)
        if self._plain:
            # The cell is now orig @ expm(X)^T / cell_factor with X below: its log is known.
            n = len(self.atoms)
            log = new[n:] / self.exp_cell_factor - np.log(self.cell_factor) * np.eye(3)
            self._log = (self.atoms.cell.array.copy(), log)

    def get_forces(self, **kwargs):
        if not self._plain:
            return super().get_forces(**kwargs)
        stress = self.atoms.get_stress(**kwargs)
        atoms_forces = self.atoms.get_forces(**kwargs)
        volume = self.atoms.cell.volume
        virial = -volume * voigt_6_to_full_3x3_stress(stress)
        deform = self._utility.deform_grad(self.atoms.cell)
        cell_gradient = virial @ np.linalg.inv(deform.T)
        log_force = expm_frechet(
            self._log_deformation().T, cell_gradient, compute_expm=False, check_finite=False
        )
        n = len(atoms_forces)
        forces = np.empty((n + 3, 3))
        forces[:n] = atoms_forces @ deform
        forces[n:] = log_force / self.exp_cell_factor
        self.stress = full_3x3_to_voigt_6_stress(-(virial / volume))
        return forces
