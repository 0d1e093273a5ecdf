"""Queries that several stages share."""

from __future__ import annotations

from sqlalchemy import select

from discovery.store.schema import Calculation, Candidate


def validated_pairs(
    session, campaign_id: int, fidelity: str, validation_order: bool = False
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
