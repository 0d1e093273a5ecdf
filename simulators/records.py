"""The outcome of one relaxation or single-point calculation."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from pymatgen.core import Structure


@dataclass(frozen=True)
class RelaxResult:
    """What a simulator produced for one structure; failures are results too, never exceptions.

    ``stress`` is ASE's Voigt order (xx, yy, zz, yz, xz, xy) and sign convention, in GPa.
    A failed result may still carry the last geometry in ``structure`` for post-mortems,
    but its energies, forces and stress are None.
    """

    simulator: str
    structure: Structure | None
    energy: float | None
    energy_per_atom: float | None
    forces_max: float | None
    stress: tuple[float, ...] | None
    converged: bool
    steps: int
    wall_s: float
    error: str | None = None
    # Python warnings raised while computing it, in another process or on another machine
    # (a pool or Dask worker), for the campaign to log where its user sees them.
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Sane enough to use: no error and a finite energy (converged or not)."""
        return self.error is None and self.energy is not None and math.isfinite(self.energy)

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it would deep-copy the Structure and leave it json-hostile.
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["structure"] = None if self.structure is None else self.structure.as_dict()
        d["stress"] = None if self.stress is None else list(self.stress)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RelaxResult:
        structure = d.get("structure")
        stress = d.get("stress")
        return cls(
            simulator=d["simulator"],
            structure=None if structure is None else Structure.from_dict(structure),
            energy=d.get("energy"),
            energy_per_atom=d.get("energy_per_atom"),
            forces_max=d.get("forces_max"),
            stress=None if stress is None else tuple(float(s) for s in stress),
            converged=bool(d["converged"]),
            steps=int(d["steps"]),
            wall_s=float(d["wall_s"]),
            error=d.get("error"),
            warnings=tuple(d.get("warnings") or ()),
        )
