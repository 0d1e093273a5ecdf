"""Hyper-parameters of the crystal GNN, the composition model and of ensemble training."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Self

_DTYPES = ("float32", "float64")


def _check_keys(cls: type, data: dict[str, Any]) -> None:
    # Silently dropping a misspelt key would train a different model than the config describes.
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(sorted(unknown))}")


class _DictMixin:
    # Every subclass is a dataclass: this makes asdict() accept `self`.
    __dataclass_fields__: ClassVar[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        _check_keys(cls, data)
        return cls(**data)


@dataclass(frozen=True)
class GNNSettings(_DictMixin):
    cutoff: float = 5.0
    hidden: int = 64
    layers: int = 3
    n_rbf: int = 32
    max_z: int = 100
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.cutoff <= 0:
            raise ValueError(f"cutoff must be > 0, got {self.cutoff}")
        if self.hidden < 1 or self.layers < 1 or self.n_rbf < 2 or self.max_z < 1:
            raise ValueError(f"hidden, layers, max_z must be >= 1 and n_rbf >= 2: {self}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {self.dtype!r}")


@dataclass(frozen=True)
class CompositionSettings(_DictMixin):
    hidden: int = 64
    layers: int = 3
    max_z: int = 100
    dtype: str = "float32"
    # Physical element descriptors (models.element_features) added to the learned embedding.
    element_descriptors: bool = True

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.layers < 1 or self.max_z < 1:
            raise ValueError(f"hidden, layers and max_z must be >= 1: {self}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {self.dtype!r}")


@dataclass(frozen=True)
class TrainSettings(_DictMixin):
    epochs: int = 200
    lr: float = 3e-3
    batch_size: int = 32
    weight_decay: float = 0.0
    val_fraction: float = 0.15
    patience: int = 30

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ValueError(f"epochs, batch_size and patience must be >= 1: {self}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"lr must be > 0 and weight_decay >= 0: {self}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
