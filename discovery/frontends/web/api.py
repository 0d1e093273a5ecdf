"""The JSON API: reads are open, writes need the token. Decisions go through the same
functions as `discovery review`, in one transaction each, straight to the store."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from discovery.engine.review_queue import (
    NotQueued,
    ReviewDecisionRecord,
    ReviewError,
    UnknownCandidate,
    comment,
    decide_many,
    history,
)
from discovery.frontends.web.auth import require_token
from discovery.frontends.web.data import candidate_exists, candidate_rows
from discovery.frontends.web.pages import table_query

router = APIRouter(prefix="/api")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Note = Annotated[str, StringConstraints(max_length=10_000)]
Uid = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approved", "rejected"]
    reviewer: Name
    note: Note = ""


class BulkDecisionIn(DecisionIn):
    uids: list[Uid] = Field(min_length=1, max_length=1000)


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reviewer: Name
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]


class DecisionOut(BaseModel):
    candidate: str
    decision: str
    reviewer: str
    note: str
    at: datetime

    @classmethod
    def of(cls, rec: ReviewDecisionRecord) -> DecisionOut:
        return cls(
            candidate=rec.candidate,
            decision=rec.decision,
            reviewer=rec.reviewer,
            note=rec.note,
            at=rec.at,
        )


def _apply(action):
    """Map review errors to HTTP: unknown id 404, not in the queue 409, anything else 422."""
    try:
        return action()
    except UnknownCandidate as err:
        raise HTTPException(404, str(err)) from None
    except NotQueued as err:
        raise HTTPException(409, str(err)) from None
    except ReviewError as err:
        raise HTTPException(422, str(err)) from None


@router.get("/candidates")
def list_candidates(request: Request) -> list[dict]:
    """The candidate table as JSON, filtered and sorted by the query parameters."""
    return table_query(request).apply(candidate_rows(request.app.state.camp))


@router.get("/candidates/{uid}/history")
def candidate_history(request: Request, uid: str) -> list[DecisionOut]:
    """Every decision and comment on one candidate, oldest first."""
    camp = request.app.state.camp
    _exists(request, uid)
    return [DecisionOut.of(r) for r in history(camp.db, camp.campaign_id, uid)]


def _exists(request: Request, uid: str) -> None:
    if not candidate_exists(request.app.state.camp, uid):
        raise HTTPException(404, f"no candidate {uid!r} in this campaign")


@router.post("/candidates/{uid}/decision", dependencies=[Depends(require_token)])
def decide_one(request: Request, uid: str, body: DecisionIn) -> DecisionOut:
    """Approve or reject one candidate (needs the review token)."""
    camp = request.app.state.camp
    recs = _apply(
        lambda: decide_many(
            camp.db, camp.campaign_id, [uid], body.decision, body.reviewer, body.note
        )
    )
    return DecisionOut.of(recs[0])


@router.post("/decisions", dependencies=[Depends(require_token)])
def decide_bulk(request: Request, body: BulkDecisionIn) -> list[DecisionOut]:
    """Approve or reject several candidates at once, all or none (needs the review token)."""
    camp = request.app.state.camp
    recs = _apply(
        lambda: decide_many(
            camp.db, camp.campaign_id, body.uids, body.decision, body.reviewer, body.note
        )
    )
    return [DecisionOut.of(r) for r in recs]


@router.post("/candidates/{uid}/comment", dependencies=[Depends(require_token)])
def add_comment(request: Request, uid: str, body: CommentIn) -> DecisionOut:
    """Add a reviewer's note to a candidate without changing its state (needs the token)."""
    camp = request.app.state.camp
    rec = _apply(lambda: comment(camp.db, camp.campaign_id, uid, body.reviewer, body.note))
    return DecisionOut.of(rec)
