"""Each validated candidate against every known structure of its chemical system: novel,
known (which phase) or a new polymorph of a known composition. The hull stage records it;
the review queue never takes a known structure, and every view shows the status."""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

from sqlalchemy import select

from discovery.domain.known.phase import KnownPhase
from discovery.engine.context import CampaignContext
from discovery.store import Calculation, Candidate
from discovery.store.convert import structure_from_json

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from discovery.domain.known.novelty import NoveltyIndex

log = logging.getLogger(__name__)


def reference_index(ctx: CampaignContext, session: Session) -> NoveltyIndex:
    """Every reference of the campaign as a known structure, both as given and as the first
    rung relaxed it (a candidate is compared relaxed, and relaxation moves both alike)."""
    from discovery.domain.known.novelty import NoveltyIndex

    rows = session.execute(
        select(Candidate, Calculation.final_structure)
        .outerjoin(
            Calculation,
            (Calculation.candidate_id == Candidate.id)
            & (Calculation.fidelity == ctx.fidelity)
            & Calculation.ok.is_(True),
        )
        .where(Candidate.campaign_id == ctx.campaign_id, Candidate.is_reference.is_(True))
    ).all()
    phases = []
    for cand, relaxed in rows:
        known_id = (cand.origin_detail or {}).get("known_id") or cand.parent or cand.uid
        source = (cand.origin_detail or {}).get("source", "references")
        phases.append(KnownPhase(known_id, source, structure_from_json(cand.structure)))
        if relaxed is not None:
            phases.append(KnownPhase(known_id, source, structure_from_json(relaxed)))
    return NoveltyIndex(phases)


def classify_round(ctx: CampaignContext, session: Session, round_index: int) -> dict[str, int]:
    """Set `novelty` and `known_id` of the round's validated candidates; returns the counts
    per status for the round's metrics."""
    rows = session.execute(
        select(Candidate, Calculation.final_structure)
        .join(Calculation, Calculation.candidate_id == Candidate.id)
        .where(
            Candidate.campaign_id == ctx.campaign_id,
            Candidate.is_reference.is_(False),
            Calculation.fidelity == ctx.fidelity,
            Calculation.round_index == round_index,
            Calculation.ok.is_(True),
        )
    ).all()
    if not rows:
        return {}
    index = reference_index(ctx, session)
    counts: Counter[str] = Counter()
    for cand, relaxed in rows:
        verdict = index.classify(structure_from_json(relaxed or cand.structure))
        cand.novelty = verdict.status
        cand.known_id = verdict.known_id
        counts[verdict.status] += 1
        if verdict.status == "known":
            log.info("%s (%s) is the known phase %s", cand.uid, cand.formula, verdict.known_id)
    return {f"novelty_{status.replace(' ', '_')}": n for status, n in counts.items()}
