"""One known phase as every source delivers it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymatgen.core import Composition, Structure

# The energy scheme of a database entry; only phases on the same scheme share a hull.
MP2020 = "mp2020"  # MP GGA/GGA+U mixing with MP2020 corrections (MP, Alexandria-PBE, WBM)


@dataclass(frozen=True)
class KnownPhase:
    """A known crystal: its structure, where it comes from and, when the source has one, its
    energy on a named scheme.

    `id` is the source's own identifier (``mp-19006``, ``agm002153973``, a file name);
    `energy_per_atom` is the corrected total energy per atom (eV/atom) on `energy_scheme`, or
    None for structures without energies (CIF exports, a lab's own phases)."""

    id: str
    source: str  # "materials_project" | "entries" | "structures" | "bundled" | "prototypes"
    structure: Structure
    energy_per_atom: float | None = None
    energy_scheme: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)  # licence, version, reference

    def __post_init__(self) -> None:
        if (self.energy_per_atom is None) != (self.energy_scheme is None):
            raise ValueError(f"{self.id}: an energy needs its scheme and a scheme its energy")

    @property
    def composition(self) -> Composition:
        return self.structure.composition

    @property
    def reduced_formula(self) -> str:
        return self.structure.composition.reduced_formula

    @property
    def elements(self) -> frozenset[str]:
        return frozenset(el.symbol for el in self.structure.composition.elements)


class KnownSourceError(ValueError):
    """A known-material source that cannot be read: the message names the file or service
    and the problem."""
