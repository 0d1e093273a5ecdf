"""GPAW in plane-wave mode as an ASE calculator: the options, their defaults, the elements.

Only what builds the calculator lives here; running it under a time limit is
``simulators.dft_subprocess``. Nothing imports GPAW until a calculator is built, so a
configuration can be checked on a machine without the ``[dft]`` extra.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ase.calculators.calculator import BaseCalculator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpawOptions:
    """Plane-wave PBE settings; every field is a keyword of ``make_calculator("gpaw", ...)``.

    The defaults aim at formation energies converged to about 10 meV/atom for small cells
    at modest cost, comparable to the Materials Project's relaxations (520 eV, ~1000
    k-points per reciprocal atom in VASP):

    - ``ecut`` 500 eV plane-wave cut-off (GPAW's PAW setups for O and F need ~500 eV;
      stresses for cell relaxations need it more than energies do).
    - ``kpt_density`` 4.0 k-points per Å⁻¹ of reciprocal-cell length (the 2π included),
      Γ-centred, via GPAW's ``kpts={"density": ..., "gamma": True}``: about 0.25 Å⁻¹
      spacing, 9x9x9 for diamond Si.
    - ``kpts`` an explicit Γ-centred grid overriding ``kpt_density`` (``(1, 1, 1)`` for a
      molecule in a box).
    - ``smearing`` 0.05 eV Fermi-Dirac width (metals need it, insulators do not notice it).
    - ``maxiter`` 300 SCF iterations before GPAW gives up (KohnShamConvergenceError).
    - ``spinpol`` None: spin-polarised exactly when the atoms carry initial moments, which
      ``simulators.magnetism`` gives magnetic elements (``RelaxSettings.spin_polarized``).
    - ``xc`` "PBE", the functional the MP-trained potentials imitate.
    """

    ecut: float = 500.0
    kpt_density: float = 4.0
    kpts: tuple[int, int, int] | None = None
    smearing: float = 0.05
    maxiter: int = 300
    spinpol: bool | None = None
    xc: str = "PBE"

    def __post_init__(self) -> None:
        # A typo in a campaign config should fail when the simulator is built, not after
        # the child process has started GPAW.
        if self.ecut <= 0:
            raise ValueError(f"ecut must be positive (eV), got {self.ecut}")
        if self.kpt_density <= 0:
            raise ValueError(f"kpt_density must be positive (per Å⁻¹), got {self.kpt_density}")
        if self.smearing < 0:
            raise ValueError(f"smearing must be >= 0 (eV), got {self.smearing}")
        if self.maxiter < 1:
            raise ValueError(f"maxiter must be >= 1, got {self.maxiter}")
        if self.kpts is not None:
            kpts = tuple(int(k) for k in self.kpts)
            if len(kpts) != 3 or min(kpts) < 1:
                raise ValueError(f"kpts must be three positive integers, got {self.kpts}")
            # Lists arrive from YAML and JSON; keep the frozen value hashable and typed.
            object.__setattr__(self, "kpts", kpts)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> GpawOptions:
        """Build from keyword options, naming the valid ones when a key is unknown."""
        valid = set(cls.__dataclass_fields__)
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ValueError(f"unknown GPAW option(s) {unknown}; valid: {', '.join(sorted(valid))}")
        return cls(**options)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kpts"] = None if self.kpts is None else list(self.kpts)
        return d

    def calculator(self) -> BaseCalculator:
        """A fresh GPAW calculator with these settings and no text output."""
        from gpaw import GPAW, PW, FermiDirac

        kpts: Any = (
            {"size": self.kpts, "gamma": True}
            if self.kpts is not None
            else {"density": self.kpt_density, "gamma": True}
        )
        kwargs: dict[str, Any] = dict(
            mode=PW(self.ecut),
            xc=self.xc,
            kpts=kpts,
            occupations=FermiDirac(self.smearing),
            maxiter=self.maxiter,
            # GPAW writes a log to stdout by default; results travel as typed records.
            txt=None,
        )
        if self.spinpol is not None:
            kwargs["spinpol"] = self.spinpol
        # GPAW's own calculator class implements ASE's calculator interface without deriving
        # from BaseCalculator in its type stubs.
        calculator: Any = GPAW(**kwargs)
        return calculator


def make_gpaw_calculator(device: str = "cpu", **options: Any) -> BaseCalculator:
    """A GPAW calculator from keyword options (see ``GpawOptions``)."""
    if device != "cpu":
        # The Debian-library build has no GPU support; say so rather than fail.
        logger.info("GPAW runs on the CPU; device %r ignored", device)
    return GpawOptions.from_options(options).calculator()


_SETUP_NAME = re.compile(r"^([A-Z][a-z]?)\.PBE(\.gz)?$")


def gpaw_elements() -> set[str] | None:
    """Elements with a PBE PAW setup on GPAW's setup path; None when GPAW is not installed."""
    try:
        from gpaw import setup_paths
    except ImportError:
        logger.info("GPAW is not installed (the [dft] extra); its elements are unknown")
        return None
    elements: set[str] = set()
    for directory in setup_paths:
        path = Path(directory)
        if path.is_dir():
            for file in path.iterdir():
                match = _SETUP_NAME.match(file.name)
                if match:
                    elements.add(match.group(1))
    return elements
