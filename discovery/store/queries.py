"""Queries that several stages share."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Select, select

from discovery.store.schema import Calculation, Candidate, HullResult, Prediction

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def validated_pairs(
    session: Session, campaign_id: int, fidelity: str, validation_order: bool = False
) -> list[tuple[Candidate, Calculation]]:
    """Every successful calculation at one fidelity, references included: by candidate id, or
    references first and then in the order the calculations were stored."""
    order = (Candidate.is_reference.desc(), Calculation.id) if validation_order else (Candidate.id,)
    rows = session.execute(
        select(Candidate, Calculation)
        .join(Calculation, Calculation.candidate_id == Candidate.id)
        .where(
            Candidate.campaign_id == campaign_id,
            Calculation.fidelity == fidelity,
            Calculation.ok.is_(True),
        )
        .order_by(*order)
    ).all()
    return [(c, k) for c, k in rows]


def top_pending_query(campaign_id: int, model_version: str, limit: int = 100) -> Select:
    """The open candidates (not yet selected) with the lowest predicted hull distance by one
    model: (candidate id, uid, predicted hull distance, spread) rows, best first.

    Ordered by the prediction alone so that `ix_predictions_model_version_e_hull_mean` gives
    the order: the query walks the best predictions and stops after `limit` open ones."""
    return (
        select(Candidate.id, Candidate.uid, Prediction.e_hull_mean, Prediction.e_form_std)
        .join(Prediction, Prediction.candidate_id == Candidate.id)
        .where(
            Prediction.model_version == model_version,
            Candidate.campaign_id == campaign_id,
            Candidate.status == "generated",
        )
        .order_by(Prediction.e_hull_mean)
        .limit(limit)
    )


def bucket_query(campaign_id: int, formula: str, key_prefix: str) -> Select:
    """(dedup key, structure JSON) of a campaign's candidates in one de-duplication bucket: a
    reduced formula and a key prefix (`generation.dedup.coarse_prefix`). The formula narrows
    through `ix_candidates_campaign_formula_dedup_key`; the prefix is a LIKE, which means the
    same in every SQL dialect and collation."""
    return select(Candidate.dedup_key, Candidate.structure).where(
        Candidate.campaign_id == campaign_id,
        Candidate.reduced_formula == formula,
        Candidate.dedup_key.startswith(key_prefix, autoescape=True),
    )


def deciding_hull_results(
    session: Session,
    candidate_ids: Collection[int],
    fidelities: Sequence[str],
    round_index: int | None = None,
) -> dict[int, HullResult]:
    """Per candidate, the hull result that decides its stability: from the highest rung of
    the ladder (`fidelities`, cheapest first) that computed it, in its latest round (or in
    `round_index`). Candidates with no hull result are absent."""
    rank = {f: k for k, f in enumerate(fidelities)}
    query = select(HullResult).where(
        HullResult.candidate_id.in_(list(candidate_ids)), HullResult.fidelity.in_(list(rank))
    )
    if round_index is not None:
        query = query.where(HullResult.round_index == round_index)
    out: dict[int, HullResult] = {}
    for h in session.scalars(query):
        best = out.get(h.candidate_id)
        if best is None or (rank[h.fidelity], h.round_index) > (
            rank[best.fidelity],
            best.round_index,
        ):
            out[h.candidate_id] = h
    return out
