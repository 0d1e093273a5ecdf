"""The hull stage: this round's hull distances at the first rung and the round's metrics."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from discovery.engine import faults
from discovery.engine.campaign_hull import record_hull
from discovery.engine.context import CampaignContext
from discovery.engine.novelty_check import classify_round
from discovery.store import Calculation, Candidate, Prediction, Round

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


def _mae_before_retrain(
    session: Session, round_row: Round, new_ids: list[int], e_form
) -> float | None:
    """MAE of the screening model on this round's newly validated structures (a true
    prospective error: the model had not seen them)."""
    if round_row.screen_model is None or not new_ids:
        return None
    preds = session.execute(
        select(Prediction.candidate_id, Prediction.e_form_mean).where(
            Prediction.model_version == round_row.screen_model,
            Prediction.candidate_id.in_(new_ids),
        )
    ).all()
    errs = [abs(mean - e_form[cid]) for cid, mean in preds if cid in e_form]
    return float(np.mean(errs)) if errs else None


def run(ctx: CampaignContext, round_index: int) -> None:
    """Rebuild the hull with this round's validations, record every candidate's distance and
    the round's hull metrics."""
    threshold = ctx.config.stability_threshold
    with ctx.progress.stage(f"round {round_index}: hull", 1) as task, ctx.db.session() as session:
        hull, e_form = record_hull(ctx, session, round_index)
        this_round = session.execute(
            select(Calculation.candidate_id, Calculation.ok, Calculation.converged)
            .join(Candidate, Candidate.id == Calculation.candidate_id)
            .where(
                Candidate.campaign_id == ctx.campaign_id,
                Candidate.is_reference.is_(False),
                Calculation.fidelity == ctx.fidelity,
                Calculation.round_index == round_index,
            )
        ).all()
        ok_ids = [cid for cid, ok, _ in this_round if ok and cid in e_form]
        stable = sum(1 for cid in ok_ids if hull.point(cid).e_above_hull <= threshold)
        row = ctx.round_row(session, round_index)
        metrics = {
            "validated": len(this_round),
            "converged": sum(1 for _, ok, conv in this_round if ok and conv),
            "failed": sum(1 for _, ok, _ in this_round if not ok),
            "stable": stable,
            "hit_rate": stable / len(this_round) if this_round else 0.0,
            "mae_before_retrain": _mae_before_retrain(session, row, ok_ids, e_form),
            "hull_size": len(hull.stable_formulas()),
            **classify_round(ctx, session, round_index),
        }
        ctx.mark_stage(session, round_index, "hull", metrics)
        faults.point("hull", round_index)
        task.advance()
