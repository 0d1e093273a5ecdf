"""The known-phase sets shipped with the package (`discovery/data/known/*.json.gz`).

Each file is a JSON list of records written by `discovery.domain.known.build_bundled`:
``{id, source, formula, spacegroup, structure, energy_per_atom, energy_scheme, origin,
licence, ...}``. Its data card is `discovery/data/known/README.md`.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from typing import Any

from pymatgen.core import Composition, Element, Structure

from discovery.domain.known.phase import KnownPhase, KnownSourceError

SOURCE = "bundled"
SUFFIX = ".json.gz"


def _known_dir() -> Any:
    return files("discovery").joinpath("data", "known")


def _set_files() -> list[Any]:
    return sorted(
        (p for p in _known_dir().iterdir() if p.name.endswith(SUFFIX)), key=lambda p: p.name
    )


def _system_of(name: str) -> str:
    """``li-mn-o.json.gz`` -> ``Li-Mn-O`` (elements sorted alphabetically)."""
    stem = name[: -len(SUFFIX)]
    return "-".join(sorted(Element(part.capitalize()).symbol for part in stem.split("-")))


@cache
def _records() -> tuple[dict[str, Any], ...]:
    out: list[dict[str, Any]] = []
    for path in _set_files():
        try:
            records = json.loads(gzip.decompress(path.read_bytes()))
        except (OSError, ValueError) as exc:
            raise KnownSourceError(f"bundled known phases {path.name}: {exc}") from exc
        if not isinstance(records, list):
            raise KnownSourceError(f"bundled known phases {path.name}: not a JSON list")
        out.extend(records)
    return tuple(out)


def _phase(record: dict[str, Any]) -> KnownPhase:
    return KnownPhase(
        id=record["id"],
        source=SOURCE,
        structure=Structure.from_dict(record["structure"]),
        energy_per_atom=record.get("energy_per_atom"),
        energy_scheme=record.get("energy_scheme"),
        provenance={
            "origin": record["origin"],
            "licence": record["licence"],
            "spacegroup": record["spacegroup"],
        },
    )


def bundled_chemical_systems() -> list[str]:
    """The chemical systems the shipped sets cover, e.g. ``["Li-Mn-O"]`` (each set also
    covers every subsystem of its system)."""
    return [_system_of(p.name) for p in _set_files()]


def bundled_phases(elements: Iterable[str]) -> list[KnownPhase]:
    """Every shipped known phase whose elements are all in `elements`, in file order.

    Args:
        elements: Element symbols of the chemical space (``{"Li", "Mn", "O"}``); a phase is
            returned when its own elements are a subset of them.

    Returns:
        The phases as `KnownPhase` records with ``source="bundled"``, their MP2020 energy
        where the set has one, and provenance ``{"origin", "licence", "spacegroup"}``.
    """
    wanted = frozenset(Element(e).symbol for e in elements)
    phases = []
    for record in _records():
        own = {el.symbol for el in Composition(record["formula"]).elements}
        if own <= wanted:
            phases.append(_phase(record))
    return phases
