"""Relaxation settings: how hard to optimise and where sanity ends."""

from __future__ import annotations

from dataclasses import dataclass

OPTIMIZERS = ("FIRE", "BFGS")


@dataclass(frozen=True)
class RelaxSettings:
    """Optimiser controls plus the sanity limits that turn a result into a failure."""

    fmax: float = 0.05  # eV/Å
    max_steps: int = 300
    optimizer: str = "FIRE"  # "FIRE" or "BFGS"
    relax_cell: bool = True  # FrechetCellFilter on positions+cell
    min_distance: float = 0.5  # Å; closer atoms (start or end) = failure
    max_volume_ratio: float = 3.0  # final/initial volume outside [1/r, r] = failure
    min_energy_per_atom: float = -50.0  # eV/atom; below = nonsense = failure
    # Seconds per structure; None = no limit. Checked between optimizer steps, so one
    # calculator call that hangs is not interrupted (a subprocess tier must police itself).
    max_seconds: float | None = None
    spin_polarized: bool = True  # magnetic elements start with initial moments

    def __post_init__(self) -> None:
        # Fail at construction so a typo in a config surfaces before hours of relaxations.
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.fmax <= 0:
            raise ValueError(f"fmax must be positive, got {self.fmax}")
        if self.max_steps < 0:
            raise ValueError(f"max_steps must be >= 0, got {self.max_steps}")
        if self.max_volume_ratio <= 1:
            raise ValueError(f"max_volume_ratio must be > 1, got {self.max_volume_ratio}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive or None, got {self.max_seconds}")
        if self.min_distance < 0:
            raise ValueError(f"min_distance must be >= 0, got {self.min_distance}")
