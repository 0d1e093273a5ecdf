"""Generate new candidates for a round and store them in one transaction."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from pymatgen.core import Composition
from sqlalchemy import select

from discovery.domain.generation.dedup import SEP, Deduplicator, coarse_prefix
from discovery.domain.generation.user_structures import load_structures
from discovery.engine import faults
from discovery.engine.campaign_hull import current_hull
from discovery.engine.candidate_generation import generate_candidates
from discovery.engine.context import CampaignContext
from discovery.engine.ensembles import latest_model, load_ensemble
from discovery.store import Candidate
from discovery.store.convert import candidate_row, structure_from_json
from discovery.store.queries import bucket_query

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_SHORT = {"substitution": "sub", "random": "rnd", "partial": "saps"}


def _history(ctx: CampaignContext, session: Session) -> Deduplicator:
    """A de-duplicator that reads the campaign's candidates (references included) one coarse
    bucket at a time, when a new structure first falls into it."""

    def load(formula: str, nprim: int):
        # every space group of this formula and primitive size, through the formula index
        rows = session.execute(
            bucket_query(ctx.campaign_id, formula, coarse_prefix(formula, nprim))
        )
        return [(key, structure_from_json(data)) for key, data in rows]

    seen = Deduplicator(loader=load)
    # Rows stored before keys had three parts carry only the reduced formula; a store from
    # an older version is read in full once, as it used to be.
    legacy = session.scalars(
        select(Candidate.structure).where(
            Candidate.campaign_id == ctx.campaign_id, Candidate.dedup_key.not_like(f"%{SEP}%")
        )
    )
    for data in legacy:
        seen.add(structure_from_json(data))
    for name, structure in load_structures(
        ctx.config.generation.known, ctx.config.generation.order_disordered
    ):
        log.debug("known structure %s", name)
        seen.add(structure)
    return seen


def _composition_ranker(ctx: CampaignContext, session: Session, round_index: int):
    """Predicted hull distance minus spread (optimistic, as the lcb acquisition) of each
    composition by the previous round's composition model; None when there is none."""
    if not ctx.config.generation.compositions.rank_by_model:
        return None
    if ctx.config.model.kind != "composition":
        log.warning(
            "generation.compositions.rank_by_model needs model.kind: composition; not ranking"
        )
        return None
    model = latest_model(ctx, session, before_round=round_index)
    if model is None:
        return None  # round 0: nothing trained yet
    ensemble = load_ensemble(ctx, model)
    hull, _ = current_hull(ctx, session)

    def rank(comps: list[Composition]) -> list[float]:
        preds = ensemble.predict(comps)
        return [hull.distance(c, p.mean) - p.std for c, p in zip(comps, preds, strict=True)]

    return rank


def run(ctx: CampaignContext, round_index: int) -> None:
    """Generate this round's new candidates (substitution, random and partial substitution)
    and store those not already seen."""
    # One stream per round: a resumed round regenerates exactly what an uninterrupted one would.
    rng = np.random.default_rng([ctx.config.seed, round_index, 1])
    gen = ctx.config.generation
    budget = gen.substitution.budget + gen.random.budget + gen.partial.budget
    with ctx.db.session() as session:
        seen = _history(ctx, session)
        rank = _composition_ranker(ctx, session, round_index)
        with ctx.progress.stage(f"round {round_index}: generate", budget) as task:
            records, stats = generate_candidates(ctx.config, rng, seen, task, rank)
    log.info("generate: %d StructureMatcher comparisons", seen.fits)
    with ctx.db.session() as session:
        for k, rec in enumerate(records):
            uid = f"r{round_index}-{_SHORT.get(rec.origin, rec.origin[:3])}-{k:04d}"
            session.add(candidate_row(rec, ctx.campaign_id, uid, round_index, False))
        ctx.mark_stage(session, round_index, "generated", stats.as_metrics())
        faults.point("generated", round_index)
