"""The review queue: the best stable, novel candidates wait for a scientist's decision."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select

from discovery.domain.generation.dedup import Deduplicator
from discovery.store import Candidate, Database, HullResult, ReviewDecision, ReviewItem
from discovery.store.convert import structure_from_json
from discovery.store.queries import deciding_hull_results
from discovery.store.schema import Calculation, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

DECISIONS = ("approved", "rejected")
COMMENT = "comment"  # a history entry that changes no status


class ReviewError(ValueError):
    """A review action that cannot be applied (unknown id, not in the queue, bad decision)."""


@dataclass(frozen=True)
class ReviewDecisionRecord:
    candidate: str
    decision: str
    reviewer: str
    note: str
    at: datetime


def novel_candidates(
    session: Session, campaign_id: int, fidelity: str, candidate_ids: Collection[int] | None = None
) -> set[int]:
    """Validated candidates whose relaxed structure matches no reference and no earlier
    candidate (two starting points often relax into the same crystal).

    With `candidate_ids`, only the reduced formulas of those candidates are read: relaxation
    keeps the formula and the matcher never pairs different formulas, so the answer for
    them is the same as over the whole campaign, without loading every structure."""
    seen = Deduplicator()
    # The first round to validate a crystal holds the original, whatever round generated it.
    query = (
        select(Candidate, Calculation)
        .join(Calculation, Calculation.candidate_id == Candidate.id)
        .where(
            Candidate.campaign_id == campaign_id,
            Calculation.fidelity == fidelity,
            Calculation.ok.is_(True),
        )
        # Within a round by candidate id: the same whichever order a pool or a cluster
        # returned the round's results in.
        .order_by(Candidate.is_reference.desc(), Calculation.round_index, Candidate.id)
    )
    if candidate_ids is not None:
        formulas = select(Candidate.reduced_formula).where(Candidate.id.in_(candidate_ids))
        query = query.where(Candidate.reduced_formula.in_(formulas))
    novel: set[int] = set()
    for cand, calc in session.execute(query).all():
        relaxed = structure_from_json(calc.final_structure)
        if cand.is_reference:
            seen.add(relaxed)
            seen.add(structure_from_json(cand.structure))
        elif seen.add_if_new(relaxed):
            novel.add(cand.id)
    return novel


def fill_queue(
    session: Session,
    campaign_id: int,
    fidelity: str,
    round_index: int,
    size: int,
    higher: Sequence[str] = (),
) -> int:
    """Queue up to `size` new stable, novel candidates of this round's hulls.

    `fidelity` is the first rung of the ladder, `higher` the rungs above it in order. The
    highest rung that computed a candidate decides: a potential's "stable" refuted by DFT
    stays out. Confirmed candidates come first, then by hull distance."""
    if size <= 0:
        return 0
    fidelities = [fidelity, *higher]
    queued = select(ReviewItem.candidate_id)
    ids = session.scalars(
        select(Candidate.id)
        .join(HullResult, HullResult.candidate_id == Candidate.id)
        .where(
            Candidate.campaign_id == campaign_id,
            Candidate.is_reference.is_(False),
            HullResult.fidelity == fidelity,
            HullResult.round_index == round_index,
            Candidate.id.not_in(queued),
            # A known structure is never a discovery, whatever its hull distance.
            or_(Candidate.novelty.is_(None), Candidate.novelty != "known"),
        )
    ).all()
    deciding = deciding_hull_results(session, ids, fidelities, round_index)
    rung = {f: k for k, f in enumerate(fidelities)}
    rows = sorted(
        ((cid, h) for cid, h in deciding.items() if h.stable),
        key=lambda item: (-rung[item[1].fidelity], item[1].e_above_hull, item[0]),
    )
    if not rows:
        return 0
    novel = novel_candidates(session, campaign_id, fidelity, [cid for cid, _ in rows])
    last_rank = session.scalar(
        select(func.max(ReviewItem.rank))
        .join(Candidate, Candidate.id == ReviewItem.candidate_id)
        .where(Candidate.campaign_id == campaign_id)
    )
    next_rank = (last_rank or 0) + 1
    added = 0
    for cid, _ in rows:
        if cid not in novel:
            continue
        session.add(ReviewItem(candidate_id=cid, round_index=round_index, rank=next_rank))
        next_rank += 1
        added += 1
        if added == size:
            break
    return added


class UnknownCandidate(ReviewError):
    """No candidate with this id in the campaign."""


class NotQueued(ReviewError):
    """The candidate exists but is not in the review queue."""


def _lock(session: Session, campaign_id: int, uids: Sequence[str]) -> list[Candidate]:
    """The candidates with these ids, in the order given, locked against every other review
    action on them until the transaction ends, so that decisions on one candidate run one
    after the other: its queue status is always its latest decision, and history order (id)
    is time order. PostgreSQL locks the rows in id order (two bulk decisions naming the same
    candidates in other orders cannot deadlock); on SQLite the session already holds the
    write lock (`Database.session(write_lock=True)`). `FOR NO KEY UPDATE` leaves the
    campaign free to insert rows that refer to the candidate meanwhile."""
    rows = session.scalars(
        select(Candidate)
        .where(Candidate.campaign_id == campaign_id, Candidate.uid.in_(uids))
        .order_by(Candidate.id)
        .with_for_update(key_share=True)
    ).all()
    by_uid = {c.uid: c for c in rows}
    for uid in uids:
        if uid not in by_uid:
            raise UnknownCandidate(f"no candidate {uid!r} in this campaign")
    return [by_uid[uid] for uid in uids]


def decide(
    db: Database, campaign_id: int, uid: str, decision: str, reviewer: str, note: str = ""
) -> ReviewDecisionRecord:
    """Record one reviewer's decision on one candidate (see `decide_many`)."""
    return decide_many(db, campaign_id, [uid], decision, reviewer, note)[0]


def decide_many(
    db: Database, campaign_id: int, uids: list[str], decision: str, reviewer: str, note: str = ""
) -> list[ReviewDecisionRecord]:
    """One decision for several queued candidates, all or none: a single unknown or unqueued
    id raises before anything is written (the web app's bulk action and the CLI share it)."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    if not reviewer.strip():
        raise ReviewError("a reviewer name is required")
    if not uids:
        raise ReviewError("no candidate ids given")
    uids = list(dict.fromkeys(uids))  # the same id twice is one decision
    with db.session(write_lock=True) as session:
        cands = _lock(session, campaign_id, uids)
        items = {
            i.candidate_id: i
            for i in session.scalars(
                select(ReviewItem).where(ReviewItem.candidate_id.in_([c.id for c in cands]))
            )
        }
        for uid, cand in zip(uids, cands, strict=True):
            if cand.id not in items:
                raise NotQueued(f"candidate {uid!r} is not in the review queue")
        now = utcnow()  # inside the lock: history order is time order
        for cand in cands:
            item = items[cand.id]
            item.status = decision
            item.updated_at = now
            session.add(
                ReviewDecision(
                    candidate_id=cand.id,
                    decision=decision,
                    reviewer=reviewer,
                    note=note,
                    created_at=now,
                )
            )
    for uid in uids:
        log.info("%s %s by %s", uid, decision, reviewer)
    return [ReviewDecisionRecord(uid, decision, reviewer, note, now) for uid in uids]


def comment(
    db: Database, campaign_id: int, uid: str, reviewer: str, note: str
) -> ReviewDecisionRecord:
    """A note in a candidate's history that leaves its queue status as it is."""
    if not reviewer.strip():
        raise ReviewError("a reviewer name is required")
    if not note.strip():
        raise ReviewError("a comment needs text")
    with db.session(write_lock=True) as session:
        (cand,) = _lock(session, campaign_id, [uid])
        now = utcnow()  # inside the lock: history order is time order
        session.add(
            ReviewDecision(
                candidate_id=cand.id, decision=COMMENT, reviewer=reviewer, note=note, created_at=now
            )
        )
    log.info("%s: comment by %s", uid, reviewer)
    return ReviewDecisionRecord(uid, COMMENT, reviewer, note, now)


def history(db: Database, campaign_id: int, uid: str) -> list[ReviewDecisionRecord]:
    """Every decision and comment on candidate `uid`, oldest first."""
    with db.session() as session:
        rows = session.execute(
            select(Candidate.uid, ReviewDecision)
            .join(ReviewDecision, ReviewDecision.candidate_id == Candidate.id)
            .where(Candidate.campaign_id == campaign_id, Candidate.uid == uid)
            .order_by(ReviewDecision.id)
        ).all()
        return [
            ReviewDecisionRecord(u, d.decision, d.reviewer, d.note, d.created_at) for u, d in rows
        ]
