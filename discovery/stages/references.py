"""Reference structures (elements and known compounds) relaxed by the campaign's simulator."""

from __future__ import annotations

import logging

from sqlalchemy import select

from discovery.context import CampaignContext
from discovery.references import reference_records
from discovery.stages.validate import pending, relax_and_record
from discovery.store import Candidate
from discovery.store.convert import candidate_row

log = logging.getLogger(__name__)


def ensure_references(ctx: CampaignContext, base_dir=None) -> None:
    records = reference_records(ctx.config.elements, ctx.config.references.known, base_dir)
    with ctx.db.session() as session:
        have = set(
            session.scalars(
                select(Candidate.uid).where(
                    Candidate.campaign_id == ctx.campaign_id, Candidate.is_reference.is_(True)
                )
            )
        )
        for k, rec in enumerate(records):
            uid = f"ref-{k:03d}-{rec.parent}"
            if uid not in have:
                session.add(candidate_row(rec, ctx.campaign_id, uid, -1, is_reference=True))
    with ctx.db.session() as session:
        todo = [c.id for c in pending(ctx, session, "reference")]
    if todo:
        log.info("relaxing %d reference structures with %s", len(todo), ctx.fidelity)
    with ctx.progress.stage("references", len(todo)) as task:
        relax_and_record(ctx, todo, -1, task)
