"""Known phases fetched from the Materials Project with its official client, `mp-api`.

Every entry with its structure in the campaign's chemical systems and all their subsystems
(Li-Mn-O: Li, Mn, O, Li-Mn, Li-O, Mn-O and Li-Mn-O), on the mixed GGA/GGA+U thermo type with
MP2020 corrections: the scheme matbench-discovery, WBM and Alexandria-PBE share. (mp-api's
default is now the GGA/GGA+U/r2SCAN hull; that is another energy scale.) `mp_api` is imported
only when a fetch is made; without it, or without an API key, `require_mp_access` says what to
do instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from discovery.domain.known.phase import MP2020, KnownPhase, KnownSourceError

SOURCE = "materials_project"
THERMO_TYPE = "GGA_GGA+U"
LICENCE = "CC-BY-4.0"
ENV_KEY = "MP_API_KEY"

_ALTERNATIVES = (
    "set the MP_API_KEY environment variable (or references.sources[...].api_key) to a key "
    "from https://next-gen.materialsproject.org/api, or use the 'entries' source (a local file "
    "of MP or Alexandria entries) or the 'bundled' source instead"
)


def mp_api_key(config_value: str | None) -> str | None:
    """The Materials Project API key: the configuration's value, else ``MP_API_KEY``; None
    when neither is set."""
    return (config_value or "").strip() or os.environ.get(ENV_KEY, "").strip() or None


def require_mp_access(api_key: str | None) -> None:
    """Check that a fetch from the Materials Project can be attempted: a key is set and the
    ``mp-api`` package is installed. Nothing is fetched.

    Raises:
        KnownSourceError: no key, or no mp-api; the message says how to set the key or which
            offline source to use.
    """
    if not api_key:
        raise KnownSourceError(f"Materials Project: no API key; {_ALTERNATIVES}")
    try:
        import mp_api.client  # noqa: F401
    except ImportError as err:
        raise KnownSourceError(
            f"Materials Project: the mp-api package is not installed ({err}); "
            f"`pip install mp-api`, or {_ALTERNATIVES.split(', or ', 1)[1]}"
        ) from None


def chemical_system_elements(chemical_systems: Sequence[str]) -> list[list[str]]:
    """The sorted, distinct element lists of chemical systems written ``Li-Mn-O``."""
    systems = {tuple(sorted(set(s.strip().split("-")))) for s in chemical_systems if s.strip()}
    return [list(s) for s in sorted(systems)]


def _database_version(rester: Any) -> str | None:
    version = getattr(rester, "db_version", None)
    if version is None and hasattr(rester, "get_database_version"):
        version = rester.get_database_version()
    return None if version is None else str(version)


def _material_id(entry: Any) -> str:
    data = getattr(entry, "data", None) or {}
    return str(data.get("material_id") or entry.entry_id)


def mp_phases(
    chemical_systems: Sequence[str], api_key: str | None
) -> tuple[list[KnownPhase], dict[str, Any]]:
    """Every GGA/GGA+U (MP2020-corrected) entry of the chemical systems and their
    subsystems, with its structure, and the fetch's metadata: ``database_version``,
    ``fetched_at`` (UTC, ISO 8601), ``n_entries``, ``chemical_systems`` and ``thermo_type``.
    A phase's id is its material id (``mp-19006``), one phase per material (its lowest
    energy entry, should MP serve several), sorted by id.

    Raises:
        KnownSourceError: no key, no mp-api, or the fetch failed (network, key refused).
    """
    require_mp_access(api_key)
    from mp_api.client import MPRester

    systems = chemical_system_elements(chemical_systems)
    fetched_at = datetime.now(UTC).isoformat(timespec="seconds")
    best: dict[str, Any] = {}  # material id -> its lowest-energy entry
    version: str | None = None
    try:
        with MPRester(api_key, mute_progress_bars=True) as rester:
            version = _database_version(rester)
            for elements in systems:
                entries = rester.get_entries_in_chemsys(
                    elements, additional_criteria={"thermo_types": [THERMO_TYPE]}
                )
                for entry in entries:
                    if getattr(entry, "structure", None) is None:
                        continue
                    material_id = _material_id(entry)
                    kept = best.get(material_id)
                    if kept is None or entry.energy_per_atom < kept.energy_per_atom:
                        best[material_id] = entry
    except Exception as err:
        names = ", ".join("-".join(s) for s in systems)
        raise KnownSourceError(f"Materials Project: fetching {names} failed: {err}") from None
    phases = [
        KnownPhase(
            id=material_id,
            source=SOURCE,
            structure=entry.structure,
            energy_per_atom=float(entry.energy_per_atom),
            energy_scheme=MP2020,
            provenance={
                "database": "Materials Project",
                "database_version": version,
                "entry_id": str(entry.entry_id),
                "thermo_type": THERMO_TYPE,
                "licence": LICENCE,
            },
        )
        for material_id, entry in sorted(best.items())
    ]
    metadata = {
        "database_version": version,
        "fetched_at": fetched_at,
        "n_entries": len(phases),
        "chemical_systems": ["-".join(s) for s in systems],
        "thermo_type": THERMO_TYPE,
    }
    return phases, metadata
