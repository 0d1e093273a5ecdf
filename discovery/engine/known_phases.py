"""The campaign's known phases: every configured source read in order and merged, the
Materials Project's answer kept in the store so that a resumed or repeated campaign, or a
cluster node without internet, never asks the network again."""

from __future__ import annotations

import logging
from dataclasses import replace
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

from pymatgen.core import Structure
from sqlalchemy import select

from discovery.config import CampaignConfig, KnownSourceConfig
from discovery.domain.known.phase import KnownPhase
from discovery.store import Database, KnownPhaseRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

MP_SOURCE = "materials_project"


def subsystems(chemical_systems: list[str]) -> list[str]:
    """Every chemical system of the campaign and all of their subsystems, sorted."""
    out: set[str] = set()
    for chemsys in chemical_systems:
        elements = sorted(chemsys.split("-"))
        for n in range(1, len(elements) + 1):
            out.update("-".join(c) for c in combinations(elements, n))
    return sorted(out, key=lambda s: (s.count("-"), s))


def known_phases(config: CampaignConfig, db: Database | None = None) -> list[KnownPhase]:
    """The phases of every source within the campaign's elements, merged in source order
    (a phase several sources hold is kept once, as the first one has it)."""
    from discovery.domain.known.merge import merge_phases

    per_source = [_read(source, config, db) for source in config.references.sources]
    for source, phases in zip(config.references.sources, per_source, strict=True):
        log.info("known phases from %s: %d", _describe(source), len(phases))
    merged = merge_phases(per_source)
    if len(per_source) > 1:
        log.info("known phases after merging duplicates: %d", len(merged))
    hidden = set(config.references.exclude)
    if hidden:
        kept = [p for p in merged if p.id not in hidden]
        log.info("known phases left out (references.exclude): %d", len(merged) - len(kept))
        missing = hidden - {p.id for p in merged}
        if missing:
            log.warning("references.exclude names no known phase: %s", ", ".join(sorted(missing)))
        merged = kept
    return merged


def known_phases_in_store(config: CampaignConfig, store_url: str | None) -> list[KnownPhase]:
    """`known_phases` with the store at `store_url` (None: no store yet) as the cache of
    fetched phases: read from it, and what was fetched now kept in it."""
    if store_url is None:
        return known_phases(config)
    db = Database(store_url)
    try:
        phases = known_phases(config, db)
        remember_fetched(db, phases)
        return phases
    finally:
        db.dispose()


def _describe(source: KnownSourceConfig) -> str:
    return f"{source.kind} {source.path}" if source.path else source.kind


def _read(source: KnownSourceConfig, config: CampaignConfig, db: Database | None):
    elements = config.elements
    if source.kind == "bundled":
        from discovery.domain.known.bundled import bundled_phases

        return bundled_phases(elements)
    if source.kind == "entries":
        from discovery.domain.known.entries_file import entries_phases

        assert source.path is not None  # the config requires it
        return entries_phases(Path(source.path), elements, scheme=source.energy_scheme)
    if source.kind == "structures":
        from discovery.domain.known.structure_folder import folder_phases

        assert source.path is not None
        return folder_phases(Path(source.path), elements)
    return materials_project_phases(config.chemical_systems, source.api_key, db)


def materials_project_phases(
    chemical_systems: list[str], api_key: str | None, db: Database | None
) -> list[KnownPhase]:
    """The Materials Project's phases of these systems and their subsystems: from the
    store when an earlier fetch covered them, else from the API (and then stored)."""
    wanted = subsystems(chemical_systems)
    if db is not None:
        with db.session() as session:
            cached = _cached(session, wanted)
        if cached is not None:
            log.info("Materials Project phases from the store: %d", len(cached))
            return cached
    from discovery.domain.known.materials_project import mp_phases

    fetched, meta = mp_phases(chemical_systems, api_key)
    log.info(
        "Materials Project %s: %d phases fetched at %s",
        meta.get("database_version"), len(fetched), meta.get("fetched_at"),
    )  # fmt: skip
    # The database version and time travel with each phase, into the store and the review.
    phases = [replace(p, provenance={**p.provenance, **meta, "query": wanted}) for p in fetched]
    if db is not None:
        remember_fetched(db, phases)
    return phases


def remember_fetched(db: Database, phases: list[KnownPhase]) -> None:
    """Keep the Materials Project phases among `phases` in the store, unless it has them."""
    fetched = [p for p in phases if p.source == MP_SOURCE]
    if not fetched:
        return
    with db.session() as session:
        store_phases(session, MP_SOURCE, fetched)


def _cached(session: Session, wanted: list[str]) -> list[KnownPhase] | None:
    rows = session.scalars(select(KnownPhaseRow).where(KnownPhaseRow.source == MP_SOURCE)).all()
    queried = {s for row in rows for s in row.provenance.get("query", [])}
    if not rows or not set(wanted) <= queried:
        return None
    return [_phase(row) for row in rows if row.chemsys in wanted]


def store_phases(session: Session, source: str, phases: list[KnownPhase]) -> None:
    """Keep fetched phases in the store (one row per source and id, replaced on refetch)."""
    have = {
        row.phase_id: row
        for row in session.scalars(select(KnownPhaseRow).where(KnownPhaseRow.source == source))
    }
    for phase in phases:
        row = have.get(phase.id) or KnownPhaseRow(source=source, phase_id=phase.id)
        row.chemsys = phase.structure.composition.chemical_system
        row.reduced_formula = phase.reduced_formula
        row.structure = phase.structure.as_dict()
        row.energy_per_atom = phase.energy_per_atom
        row.energy_scheme = phase.energy_scheme
        row.provenance = dict(phase.provenance)
        session.add(row)


def _phase(row: KnownPhaseRow) -> KnownPhase:
    return KnownPhase(
        id=row.phase_id,
        source=row.source,
        structure=Structure.from_dict(row.structure),
        energy_per_atom=row.energy_per_atom,
        energy_scheme=row.energy_scheme,
        provenance=dict(row.provenance),
    )
