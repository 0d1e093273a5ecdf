"""Plain result records returned by the ensemble."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prediction:
    mean: float  # formation energy, eV/atom
    std: float  # spread across ensemble members, eV/atom


@dataclass(frozen=True)
class TrainReport:
    n_train: int
    n_val: int
    epochs_run: list[int]  # one entry per member
    train_mae: float  # ensemble-mean MAE, eV/atom
    val_mae: float | None  # None when no validation split was made
    wall_s: float
