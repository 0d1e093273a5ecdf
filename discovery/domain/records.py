"""Typed records that cross stage boundaries inside `discovery`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pymatgen.core import Structure


@dataclass(frozen=True)
class CandidateRecord:
    """A proposed structure and how it was made (before it has an id in the store)."""

    structure: Structure
    origin: str  # generator name: "substitution", "random", "reference"
    parent: str | None = None  # prototype or parent candidate it came from
    detail: dict[str, Any] = field(default_factory=dict)  # the substitution or search made


@dataclass(frozen=True)
class ScoredCandidate:
    """A screened candidate as the acquisition step sees it."""

    candidate_id: int
    chemsys: str
    e_hull_mean: float  # predicted energy above the current hull, eV/atom
    e_hull_std: float  # ensemble spread carried over from the formation energy, eV/atom


@dataclass(frozen=True)
class HullPoint:
    candidate_id: int
    e_form_per_atom: float
    e_above_hull: float
    decomposition: str


@dataclass(frozen=True)
class RungMetricKeys:
    """The round-metric keys the promote stage writes for one rung of the fidelity ladder
    and ``discovery status`` reads back: fidelity labels made safe for MLflow."""

    rung: str
    below: str

    @classmethod
    def of(cls, below: str, fidelity: str) -> RungMetricKeys:
        return cls(rung=_metric_safe(fidelity), below=_metric_safe(below))

    @property
    def promoted(self) -> str:
        return f"promoted_{self.rung}"

    @property
    def stable(self) -> str:
        return f"stable_{self.rung}"

    @property
    def agreement_mae(self) -> str:
        return f"agreement_mae_{self.below}_{self.rung}"

    @property
    def agreement_n(self) -> str:
        return f"agreement_n_{self.below}_{self.rung}"


def _metric_safe(label: str) -> str:
    return re.sub(r"[^0-9A-Za-z_.-]", "_", label)
