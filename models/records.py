"""Plain result records returned by the ensemble."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Prediction:
    mean: float  # formation energy, eV/atom
    std: float  # spread across ensemble members, eV/atom


@dataclass(frozen=True)
class EpochLog:
    """One epoch of one member, for loss curves, pruning and progress."""

    member: int
    epoch: int
    train_loss: float  # mean Huber loss on standardised targets
    val_mae: float | None  # eV/atom; None without a validation split


@dataclass(frozen=True)
class TrainReport:
    n_train: int
    n_val: int
    epochs_run: list[int]  # one entry per member
    train_mae: float  # ensemble-mean MAE, eV/atom
    val_mae: float | None  # None when no validation split was made
    wall_s: float
    # Multiplies the members' spread so that it matches the validation errors (1.0 when there
    # was nothing to fit it on); `calibration` scores the scaled spread on the validation set.
    variance_scale: float = 1.0
    calibration: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for a log: sizes, errors, epochs per member, calibration and time."""
        val = "-" if self.val_mae is None else f"{self.val_mae:.3f}"
        epochs = "/".join(str(n) for n in self.epochs_run)
        parts = [
            f"{self.n_train} train + {self.n_val} val",
            f"MAE train {self.train_mae:.3f} val {val} eV/atom",
            f"epochs {epochs}",
            f"spread x{self.variance_scale:.2f}",
        ]
        if "miscalibration_area" in self.calibration:
            parts.append(f"miscalibration {self.calibration['miscalibration_area']:.3f}")
        parts.append(f"{self.wall_s:.1f} s")
        return ", ".join(parts)
