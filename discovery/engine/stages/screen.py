"""Screen the open pool with the latest ensemble: formation energy -> predicted hull distance."""

from __future__ import annotations

import logging

from pymatgen.core import Composition
from sqlalchemy import select

from discovery.engine import faults
from discovery.engine.campaign_hull import current_hull
from discovery.engine.context import CampaignContext
from discovery.engine.ensembles import latest_model, load_ensemble
from discovery.engine.initial_model import guided_by
from discovery.store import Candidate, Prediction
from discovery.store.cached_graphs import StoreGraphCache
from discovery.store.convert import structure_from_json

log = logging.getLogger(__name__)


def run(ctx: CampaignContext, round_index: int) -> None:
    """Predict the open candidates with the latest model; a no-op before the first model."""
    with ctx.db.session() as session:
        model = latest_model(ctx, session, before_round=round_index)
        if model is None:
            ctx.mark_stage(session, round_index, "screened", {"screened": 0})
            return
        version = model.version
        ensemble = load_ensemble(ctx, model)
        source = guided_by(ctx, version)
        run_id = ctx.round_row(session, round_index).mlflow_run_id
        hull, _ = current_hull(ctx, session)
        scored = select(Prediction.candidate_id).where(Prediction.model_version == version)
        pool = list(
            session.scalars(
                select(Candidate)
                .where(
                    Candidate.campaign_id == ctx.campaign_id,
                    Candidate.status == "generated",
                    Candidate.id.not_in(scored),
                )
                .order_by(Candidate.id)
            )
        )
    if source is not None:
        log.info("round %d: guided by checkpoint %s", round_index, source)
        if run_id is not None:
            ctx.tracker.set_tags(run_id, {"guided_by": source})
    with ctx.progress.stage(f"round {round_index}: screen", len(pool)) as task:
        m = ctx.config.model
        preds = ensemble.predict(
            [structure_from_json(c.structure) for c in pool],
            volume_scales=m.volume_augmentation,
            aggregate=m.augment_aggregate,
            graph_cache=StoreGraphCache(ctx.db),
        )
        task.advance(len(pool))
    with ctx.db.session() as session:
        for cand, pred in zip(pool, preds, strict=True):
            e_hull = hull.distance(Composition(cand.formula), pred.mean)
            session.add(
                Prediction(
                    candidate_id=cand.id,
                    model_version=version,
                    round_index=round_index,
                    e_form_mean=pred.mean,
                    e_form_std=pred.std,
                    e_hull_mean=e_hull,
                )
            )
        row = ctx.mark_stage(session, round_index, "screened", {"screened": len(pool)})
        row.screen_model = version
        faults.point("screened", round_index)
