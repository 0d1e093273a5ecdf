"""Pick this round's validation budget from the open pool."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from discovery.domain.acquisition import select as acquire
from discovery.domain.records import ScoredCandidate
from discovery.engine import faults
from discovery.engine.context import CampaignContext
from discovery.store import Candidate, Prediction


def run(ctx: CampaignContext, round_index: int) -> None:
    """Choose the round's candidates for validation from the open pool by the acquisition
    function."""
    acq = ctx.config.acquisition
    rng = np.random.default_rng([ctx.config.seed, round_index, 2])
    with ctx.db.session() as session:
        row = ctx.round_row(session, round_index)
        open_pool = list(
            session.scalars(
                select(Candidate)
                .where(Candidate.campaign_id == ctx.campaign_id, Candidate.status == "generated")
                .order_by(Candidate.id)
            )
        )
        if row.screen_model is None:
            # Cold start, no model yet: an unbiased random sample is the honest first batch.
            pool = [ScoredCandidate(c.id, c.chemsys, 0.0, 0.0) for c in open_pool]
            strategy = "random"
        else:
            preds = dict(
                session.execute(
                    select(Prediction.candidate_id, Prediction).where(
                        Prediction.model_version == row.screen_model
                    )
                ).all()
            )
            pool = [
                ScoredCandidate(c.id, c.chemsys, preds[c.id].e_hull_mean, preds[c.id].e_form_std)
                for c in open_pool
                if c.id in preds
            ]
            strategy = acq.strategy
        picked = acquire(
            pool,
            ctx.config.validation_budget,
            strategy,
            rng,
            kappa=acq.kappa,
            max_per_chemsys=acq.max_per_chemsys,
        )
        for cand in session.scalars(select(Candidate).where(Candidate.id.in_(picked))):
            cand.status = "selected"
        ctx.mark_stage(
            session, round_index, "selected", {"selected": len(picked), "pool": len(pool)}
        )
        faults.point("selected", round_index)
