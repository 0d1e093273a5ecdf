"""Read-only views of a campaign: per-round metrics and the best candidates so far."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from discovery.config import INIT_SCRATCH
from discovery.domain.records import RungMetricKeys
from discovery.engine.campaign_directory import OpenCampaign
from discovery.store import Candidate, HullResult, ReviewItem, Round
from discovery.store.queries import deciding_hull_results

# metric key -> column header of the summary table
ROUND_COLUMNS = {
    "round": "round", "stage": "stage", "unique": "new", "validated": "validated",
    "converged": "conv.", "failed": "failed", "stable": "stable", "hit_rate": "hit rate",
    "mae_before_retrain": "MAE pre (eV/at)", "holdout_mae": "MAE held-out",
    "validated_chemsys": "systems", "queued": "queued", "wall_s": "wall (s)",
}  # fmt: skip


def round_columns(camp: OpenCampaign) -> dict[str, str]:
    """ROUND_COLUMNS plus, on a fidelity ladder, what each higher rung did with its picks, and
    from a pretrained checkpoint, the real and synthetic training entries."""
    columns = dict(ROUND_COLUMNS)
    wall = columns.pop("wall_s")
    fids = camp.fidelities
    for below, fidelity in zip(fids, fids[1:], strict=False):
        keys = RungMetricKeys.of(below, fidelity)
        columns[keys.promoted] = f"to {keys.rung}"
        columns[keys.stable] = f"stable {keys.rung}"
        columns[keys.agreement_mae] = f"MAE {keys.below}/{keys.rung}"
    if camp.config.model.init != INIT_SCRATCH:
        # A campaign from a checkpoint replays synthetic entries; their share should fall.
        columns["train_real"] = "real"
        columns["train_synthetic"] = "synthetic"
        columns["synthetic_share"] = "synth. share"
    columns["wall_s"] = wall
    return columns


def guard_warnings(camp: OpenCampaign) -> list[str]:
    """The collapse guards' warnings of every round, oldest first (see
    discovery.domain.collapse_guards)."""
    return [
        f"round {row['round']}: {text}"
        for row in round_rows(camp)
        for text in row.get("guard_warnings") or []
    ]


def round_rows(camp: OpenCampaign) -> list[dict[str, Any]]:
    """One row per round: its index, its last finished stage and its metrics."""
    with camp.db.session() as session:
        rounds = session.scalars(
            select(Round).where(Round.campaign_id == camp.campaign_id).order_by(Round.index)
        ).all()
        return [{"round": r.index, "stage": r.stage, **(r.metrics or {})} for r in rounds]


def top_candidates(camp: OpenCampaign, n: int = 10) -> list[dict[str, Any]]:
    """Validated candidates with the lowest energy above the first rung's latest hull; where a
    higher rung of the ladder computed one, its verdict is shown and named in `fidelity`."""
    with camp.db.session() as session:
        latest = session.scalar(
            select(func.max(HullResult.round_index)).where(HullResult.fidelity == camp.fidelity)
        )
        if latest is None:
            return []
        rows = session.execute(
            select(Candidate, HullResult, ReviewItem.status)
            .join(HullResult, HullResult.candidate_id == Candidate.id)
            .outerjoin(ReviewItem, ReviewItem.candidate_id == Candidate.id)
            .where(
                Candidate.campaign_id == camp.campaign_id,
                Candidate.is_reference.is_(False),
                HullResult.round_index == latest,
                HullResult.fidelity == camp.fidelity,
            )
            .order_by(HullResult.e_above_hull, Candidate.id)
            .limit(n)
        ).all()
        deciding = deciding_hull_results(session, [c.id for c, _, _ in rows], camp.fidelities)
        return [
            {
                "id": c.uid,
                "formula": c.reduced_formula,
                "origin": c.parent or c.origin,
                "e_form": deciding[c.id].e_form_per_atom,
                "e_above_hull": deciding[c.id].e_above_hull,
                "stable": deciding[c.id].stable,
                "fidelity": deciding[c.id].fidelity,
                "novelty": c.novelty or "-",
                "review": status or "-",
            }
            for c, _, status in rows
        ]


def counts(camp: OpenCampaign) -> dict[str, int]:
    """How many candidates are in each status, and queue items in each review state."""
    with camp.db.session() as session:
        by_status = dict(
            session.execute(
                select(Candidate.status, func.count())
                .where(Candidate.campaign_id == camp.campaign_id)
                .group_by(Candidate.status)
            ).all()
        )
        queue = dict(
            session.execute(
                select(ReviewItem.status, func.count())
                .join(Candidate, Candidate.id == ReviewItem.candidate_id)
                .where(Candidate.campaign_id == camp.campaign_id)
                .group_by(ReviewItem.status)
            ).all()
        )
    return {**{f"candidates_{k}": v for k, v in by_status.items()},
            **{f"review_{k}": v for k, v in queue.items()}}  # fmt: skip
