"""Climb the fidelity ladder: the round's best candidates of each rung are relaxed again on
the next (e.g. CHGNet's picks confirmed by DFT), and every rung keeps its own hull."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from discovery.config import FidelityConfig
from discovery.domain.records import RungMetricKeys
from discovery.engine.campaign_hull import current_hull, record_hull
from discovery.engine.context import CampaignContext
from discovery.engine.relaxation import relax_and_record
from discovery.store import Calculation, Candidate, HullResult

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


def promotion_picks(
    ctx: CampaignContext, session: Session, round_index: int, rung: int
) -> list[int]:
    """This round's best candidates on the rung below, by its hull distance (lowest first),
    at most `promote` of them and none beyond `promote_max_e_above_hull`."""
    below = ctx.config.ladder[rung - 1].fidelity
    cfg = ctx.config.ladder[rung]
    assert isinstance(cfg, FidelityConfig)  # every rung above the first is one
    rows = session.execute(
        select(HullResult.candidate_id, HullResult.e_above_hull)
        .join(Candidate, Candidate.id == HullResult.candidate_id)
        .join(
            Calculation,
            (Calculation.candidate_id == HullResult.candidate_id) & (Calculation.fidelity == below),
        )
        .where(
            Candidate.campaign_id == ctx.campaign_id,
            Candidate.is_reference.is_(False),
            HullResult.fidelity == below,
            HullResult.round_index == round_index,
            Calculation.round_index == round_index,  # validated (or promoted) this round
            HullResult.e_above_hull <= cfg.promote_max_e_above_hull,
        )
        .order_by(HullResult.e_above_hull, HullResult.candidate_id)
        .limit(cfg.promote)
    ).all()
    return [cid for cid, _ in rows]


def _saved_picks(ctx: CampaignContext, session: Session, round_index: int, fidelity: str):
    return (ctx.round_row(session, round_index).metrics or {}).get("promoted", {}).get(fidelity)


def _save_picks(
    ctx: CampaignContext, session: Session, round_index: int, fidelity: str, picks
) -> None:
    # Committed before the first relaxation: a resumed round relaxes the same picks, even
    # though the rung below may rank differently once some of them are done.
    row = ctx.round_row(session, round_index)
    metrics = dict(row.metrics or {})
    metrics["promoted"] = {**metrics.get("promoted", {}), fidelity: list(picks)}
    row.metrics = metrics


def agreement(lower: dict[int, float], upper: dict[int, float], ids) -> tuple[float | None, int]:
    """MAE of formation energy between two rungs over the candidates computed at both."""
    both = [cid for cid in ids if cid in lower and cid in upper]
    if not both:
        return None, 0
    return float(np.mean([abs(lower[c] - upper[c]) for c in both])), len(both)


def run(ctx: CampaignContext, round_index: int) -> None:
    """Relax the round's best candidates of each rung again on the next rung of the ladder and
    record each rung's hull."""
    ladder = ctx.config.ladder
    metrics: dict[str, float | int | None] = {}
    for rung in range(1, len(ladder)):
        fidelity, below = ladder[rung].fidelity, ladder[rung - 1].fidelity
        with ctx.db.session() as session:
            picks = _saved_picks(ctx, session, round_index, fidelity)
            if picks is None:
                picks = promotion_picks(ctx, session, round_index, rung)
                _save_picks(ctx, session, round_index, fidelity, picks)
        with ctx.db.session() as session:
            done = set(
                session.scalars(
                    select(Calculation.candidate_id).where(
                        Calculation.candidate_id.in_(picks), Calculation.fidelity == fidelity
                    )
                )
            )
        todo = [cid for cid in picks if cid not in done]
        label = f"round {round_index}: {below} -> {fidelity}"
        with ctx.progress.stage(label, len(todo)) as task:
            relax_and_record(ctx, todo, round_index, task, rung)
        with ctx.db.session() as session:
            _, lower = current_hull(ctx, session, rung - 1)
            hull, upper = record_hull(ctx, session, round_index, rung)
            # Candidates only: the references' agreement is the elemental energies' by design.
            candidates = session.scalars(
                select(Candidate.id)
                .where(Candidate.id.in_(list(upper)), Candidate.is_reference.is_(False))
                .order_by(Candidate.id)
            ).all()
            mae, n_both = agreement(lower, upper, candidates)
            confirmed = [
                cid
                for cid in picks
                if cid in upper and hull.point(cid).e_above_hull <= ctx.config.stability_threshold
            ]
        keys = RungMetricKeys.of(below, fidelity)
        metrics[keys.promoted] = len(picks)
        metrics[keys.stable] = len(confirmed)
        metrics[keys.agreement_mae] = mae
        metrics[keys.agreement_n] = n_both
        if mae is not None:
            log.info(
                "round %d: %d promoted to %s, %d stable there; e_form MAE %s vs %s %.3f eV/atom "
                "over %d candidates",
                round_index, len(picks), fidelity, len(confirmed), below, fidelity, mae, n_both,
            )  # fmt: skip
    with ctx.db.session() as session:
        ctx.mark_stage(session, round_index, "promoted", metrics)
