"""Relax structures with the campaign's simulator; each result is committed as it arrives."""

from __future__ import annotations

import logging

from sqlalchemy import select

from discovery.context import CampaignContext
from discovery.store import Calculation, Candidate
from discovery.store.convert import calculation_row, structure_from_json

log = logging.getLogger(__name__)


def pending(ctx: CampaignContext, session, status: str) -> list[Candidate]:
    """Candidates in `status` that have no calculation at this fidelity yet."""
    done = select(Calculation.candidate_id).where(Calculation.fidelity == ctx.fidelity)
    return list(
        session.scalars(
            select(Candidate)
            .where(
                Candidate.campaign_id == ctx.campaign_id,
                Candidate.status == status,
                Candidate.id.not_in(done),
            )
            .order_by(Candidate.id)
        )
    )


def relax_and_record(ctx: CampaignContext, candidate_ids: list[int], round_index: int, task) -> int:
    """Relax each candidate and commit its result at once, so a kill loses at most the
    structures in flight (one, or one batch when `simulator.batched`)."""
    # Molecules in a box keep their cell, so they go to the fixed-cell simulator; each
    # group is relaxed in one stream (batched or not) and committed result by result.
    with ctx.db.session() as session:
        fixed_ids = {
            cid
            for cid in candidate_ids
            if (session.get(Candidate, cid).origin_detail or {}).get("fixed_cell")
        }
    groups = [
        ([c for c in candidate_ids if c not in fixed_ids], True),
        ([c for c in candidate_ids if c in fixed_ids], False),
    ]
    cfg = ctx.config.simulator
    n = 0
    for ids, relax_cell in groups:
        if not ids:
            continue
        with ctx.db.session() as session:
            structures = [structure_from_json(session.get(Candidate, cid).structure) for cid in ids]
        if ctx.executor is not None:
            spec = ctx.simulator_spec(relax_cell and cfg.relax_cell)
            results = ctx.executor.relax_as_completed(spec, structures)
        else:
            sim = ctx.simulator if relax_cell else ctx.fixed_cell_simulator
            results = sim.relax_as_completed(structures, cfg.batched, cfg.batch_size)
        for index, result in results:
            _record(ctx, ids[index], result, round_index)
            n += 1
            task.advance()
    return n


def _record(ctx: CampaignContext, cid: int, result, round_index: int) -> None:
    with ctx.db.session() as session:
        cand = session.get(Candidate, cid)
        session.add(calculation_row(cand, result, ctx.fidelity, round_index))
        if not cand.is_reference:
            cand.status = "validated" if result.ok else "failed"
        if not result.ok:
            log.warning("%s (%s) failed: %s", cand.uid, cand.formula, result.error)


def run(ctx: CampaignContext, round_index: int) -> None:
    with ctx.db.session() as session:
        todo = [c.id for c in pending(ctx, session, "selected")]
    with ctx.progress.stage(f"round {round_index}: validate", len(todo)) as task:
        relax_and_record(ctx, todo, round_index, task)
    with ctx.db.session() as session:
        ctx.mark_stage(session, round_index, "validated")
