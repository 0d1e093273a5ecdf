"""Typed records that cross stage boundaries inside `discovery`."""

from __future__ import annotations

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
