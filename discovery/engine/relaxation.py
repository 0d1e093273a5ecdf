"""Relax candidates on one rung of the fidelity ladder and commit each result as it arrives.
Shared by the validate and promote stages and the reference set."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from discovery.engine import faults
from discovery.engine.context import CampaignContext
from discovery.store import Calculation, Candidate
from discovery.store.convert import calculation_row, structure_from_json

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


def pending(ctx: CampaignContext, session: Session, status: str, fidelity: str | None = None):
    """Candidates in `status` that have no calculation at this fidelity (default: the
    simulator's) yet."""
    done = select(Calculation.candidate_id).where(
        Calculation.fidelity == (fidelity or ctx.fidelity)
    )
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


def starting_structures(ctx: CampaignContext, session: Session, ids: list[int], rung: int):
    """What each rung starts from: the generated structure on the first rung, the structure
    the rung below relaxed on the others (DFT starts where the potential stopped)."""
    if rung == 0:
        return [structure_from_json(session.get_one(Candidate, cid).structure) for cid in ids]
    below = ctx.config.ladder[rung - 1].fidelity
    finals = {
        cid: final
        for cid, final in session.execute(
            select(Calculation.candidate_id, Calculation.final_structure).where(
                Calculation.candidate_id.in_(ids), Calculation.fidelity == below
            )
        )
    }
    return [
        structure_from_json(finals.get(cid) or session.get_one(Candidate, cid).structure)
        for cid in ids
    ]


def relax_and_record(
    ctx: CampaignContext, candidate_ids: list[int], round_index: int, task, rung: int = 0
) -> int:
    """Relax each candidate on one rung of the ladder and commit its result at once, so a
    kill loses at most the structures in flight (one, or one batch when batched)."""
    # Molecules in a box keep their cell, so they go to the fixed-cell simulator; each
    # group is relaxed in one stream (batched or not) and committed result by result.
    with ctx.db.session() as session:
        fixed_ids = {
            cid
            for cid in candidate_ids
            if (session.get_one(Candidate, cid).origin_detail or {}).get("fixed_cell")
        }
    groups = [
        ([c for c in candidate_ids if c not in fixed_ids], True),
        ([c for c in candidate_ids if c in fixed_ids], False),
    ]
    cfg = ctx.config.ladder[rung]
    n = 0
    for ids, relax_cell in groups:
        if not ids:
            continue
        with ctx.db.session() as session:
            structures = starting_structures(ctx, session, ids, rung)
        # A batched rung relaxes in this process (its batch is its parallelism); the
        # others, a DFT rung above it say, still go to the executor.
        spec = ctx.simulator_spec(relax_cell and cfg.relax_cell, rung)
        if cfg.batched:
            sim = ctx.simulator_for(rung, relax_cell)
            results = sim.relax_as_completed(structures, True, cfg.batch_size)
        else:
            results = ctx.executor.relax_as_completed(spec, structures)
        key = spec.settings_key()
        for index, result in results:
            _record(ctx, ids[index], result, round_index, rung, key)
            n += 1
            task.advance()
    return n


# Warnings that came back from workers, each logged once per process: a library warns on
# every structure it sees.
_SEEN_WARNINGS: set[str] = set()


def _log_worker_warnings(texts: tuple[str, ...]) -> None:
    for text in texts:
        if text not in _SEEN_WARNINGS:
            _SEEN_WARNINGS.add(text)
            log.warning("from a relaxation worker: %s", text)


def _record(
    ctx: CampaignContext, cid: int, result, round_index: int, rung: int, settings_key: str
) -> None:
    with ctx.db.session() as session:
        cand = session.get_one(Candidate, cid)
        fidelity = ctx.config.ladder[rung].fidelity
        session.add(calculation_row(cand, result, fidelity, round_index, settings_key))
        # The status follows the first rung; a higher rung's failure leaves the candidate
        # validated, decided by the rung below.
        if not cand.is_reference and rung == 0:
            cand.status = "validated" if result.ok else "failed"
        if not result.ok:
            log.warning("%s (%s) failed at %s: %s", cand.uid, cand.formula, fidelity, result.error)
    _log_worker_warnings(result.warnings)
    if rung == 0:
        faults.point("validated", round_index)
