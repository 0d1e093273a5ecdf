"""Generate new candidates for a round and store them in one transaction."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from discovery.context import CampaignContext
from discovery.generation import generate_candidates
from discovery.generation.dedup import Deduplicator
from discovery.store import Candidate
from discovery.store.convert import candidate_row, structure_from_json

_SHORT = {"substitution": "sub", "random": "rnd"}


def run(ctx: CampaignContext, round_index: int) -> None:
    seen = Deduplicator()
    with ctx.db.session() as session:
        for data in session.scalars(
            select(Candidate.structure).where(Candidate.campaign_id == ctx.campaign_id)
        ):
            seen.add(structure_from_json(data))
    # One stream per round: a resumed round regenerates exactly what an uninterrupted one would.
    rng = np.random.default_rng([ctx.config.seed, round_index, 1])
    budget = ctx.config.generation.substitution.budget + ctx.config.generation.random.budget
    with ctx.progress.stage(f"round {round_index}: generate", budget) as task:
        records, stats = generate_candidates(ctx.config, rng, seen, task)
    with ctx.db.session() as session:
        for k, rec in enumerate(records):
            uid = f"r{round_index}-{_SHORT.get(rec.origin, rec.origin[:3])}-{k:04d}"
            session.add(candidate_row(rec, ctx.campaign_id, uid, round_index, False))
        ctx.mark_stage(session, round_index, "generated", stats.as_metrics())
