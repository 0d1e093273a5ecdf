"""Several processes on one store at once, as in a real campaign: two reviewers deciding on
the review queue while the campaign commits simulation results. Nothing may be lost or
duplicated, on a SQLite file (WAL) and on a PostgreSQL server."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time

import sqlalchemy as sa
from conftest import REPO, write_config
from pymatgen.core import Lattice, Structure
from sqlalchemy.exc import IntegrityError

from discovery.config import load_config
from discovery.domain.records import CandidateRecord
from discovery.store import (
    Calculation,
    Campaign,
    Candidate,
    Database,
    HullResult,
    ReviewDecision,
    ReviewItem,
    Round,
)
from discovery.store.convert import calculation_row, candidate_row

QUEUED = 12  # candidates in the review queue
DECISIONS = 30  # decisions per reviewer, cycling over the queue
RESULTS = 40  # candidates the campaign validates meanwhile
REVIEWERS = ("ada", "bob")


def _crystal(a: float) -> Structure:
    return Structure(Lattice.cubic(a), ["Cu", "Au"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _prepare(url: str) -> None:
    db = Database(url)
    with db.session() as s:
        s.add(Campaign(name="busy", config_yaml=""))
        s.flush()
        for i in range(QUEUED + RESULTS):
            uid = f"q-{i}" if i < QUEUED else f"v-{i}"
            cand = candidate_row(
                CandidateRecord(_crystal(3.5 + 0.01 * i), "random"), 1, uid, 0, False
            )
            s.add(cand)
            s.flush()
            if i < QUEUED:
                s.add(ReviewItem(candidate_id=cand.id, round_index=0, rank=i))
    db.dispose()


def _review(url: str, reviewer: str, barrier) -> None:
    from discovery.engine.review_queue import decide

    db = Database(url)
    barrier.wait()
    for n in range(DECISIONS):
        decision = "approved" if n % 2 else "rejected"
        decide(db, 1, f"q-{n % QUEUED}", decision, reviewer, note=f"{reviewer}-{n}")
    db.dispose()


def _validate(url: str, barrier) -> None:
    """The validate and hull stages' writes: one transaction per result, then a retry of
    every result (a re-submitted task), which the unique key must refuse."""
    from simulators import RelaxResult

    db = Database(url)
    with db.session() as s:
        cands = s.scalars(sa.select(Candidate.id).where(Candidate.uid.startswith("v-"))).all()
    barrier.wait()
    for cid in cands:
        with db.session() as s:
            row = s.get(Candidate, cid)
            result = RelaxResult("emt", _crystal(3.6), -8.0, -4.0, 0.01, None, True, 5, 0.1)
            s.add(calculation_row(row, result, "emt", 0))
            s.add(
                HullResult(
                    candidate_id=cid,
                    fidelity="emt",
                    round_index=0,
                    e_form_per_atom=-0.1,
                    e_above_hull=0.02,
                    stable=True,
                )
            )
    refused = 0
    for cid in cands:
        try:
            with db.session() as s:
                s.add(
                    Calculation(
                        candidate_id=cid,
                        simulator="emt",
                        fidelity="emt",
                        round_index=0,
                        ok=True,
                        converged=True,
                        steps=1,
                        wall_s=0.1,
                    )
                )
        except IntegrityError:
            refused += 1
    db.dispose()
    assert refused == len(cands) == RESULTS


def test_two_reviewers_and_a_campaign_write_at_once(store_url):
    _prepare(store_url)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_review, args=(store_url, r, barrier)) for r in REVIEWERS]
    procs.append(ctx.Process(target=_validate, args=(store_url, barrier)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0, 0]

    db = Database(store_url)
    with db.session() as s:
        notes = s.execute(sa.select(ReviewDecision.reviewer, ReviewDecision.note)).all()
        expected = {(r, f"{r}-{n}") for r in REVIEWERS for n in range(DECISIONS)}
        assert len(notes) == len(expected) and set(notes) == expected
        # Each queue entry shows the decision written last.
        last = {}
        for d in s.scalars(sa.select(ReviewDecision).order_by(ReviewDecision.id)):
            last[d.candidate_id] = d.decision
        queue = dict(s.execute(sa.select(ReviewItem.candidate_id, ReviewItem.status)).all())
        assert queue == last and len(queue) == QUEUED
        calcs = s.scalars(sa.select(Calculation.candidate_id)).all()
        assert len(calcs) == len(set(calcs)) == RESULTS
        assert s.scalar(sa.select(sa.func.count()).select_from(HullResult)) == RESULTS
    db.dispose()


def _review_until(url: str, reviewer: str, uids: list[str], started, stop) -> None:
    """Decide on the queue, note by numbered note, until the campaign has finished."""
    from discovery.engine.review_queue import decide

    db = Database(url)
    started.wait()
    n = 0
    while not stop.is_set() or n == 0:
        decision = "approved" if n % 2 else "rejected"
        decide(db, 1, uids[n % len(uids)], decision, reviewer, note=f"{reviewer}-{n}")
        n += 1
        time.sleep(0.05)  # a brisk human: the campaign's own writes still interleave
    db.dispose()


def test_two_reviewers_beside_a_real_campaign_round(toy_copy, tmp_path):
    """The real thing on the default SQLite store: `discovery run` extends the finished toy
    campaign by a round while two reviewer processes decide on its queue."""
    url = f"sqlite:///{toy_copy / 'campaign.db'}"
    db = Database(url)
    with db.session() as s:
        uids = s.scalars(
            sa.select(Candidate.uid).join(ReviewItem, ReviewItem.candidate_id == Candidate.id)
        ).all()
        calcs_before = s.scalar(sa.select(sa.func.count()).select_from(Calculation))
    db.dispose()
    assert uids
    config = load_config(toy_copy / "campaign.yaml").model_dump(mode="json")
    config["rounds"] += 1
    path = write_config(tmp_path / "more.yaml", config)

    ctx = multiprocessing.get_context("spawn")
    started, stop = ctx.Event(), ctx.Event()
    reviewers = [
        ctx.Process(target=_review_until, args=(url, r, uids, started, stop)) for r in REVIEWERS
    ]
    for p in reviewers:
        p.start()
    campaign = subprocess.Popen(
        [sys.executable, "-m", "discovery.frontends.cli", "run", str(path), "--dir", str(toy_copy)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    started.set()
    try:
        _, err = campaign.communicate(timeout=900)
    finally:
        stop.set()
        for p in reviewers:
            p.join(120)
    assert campaign.returncode == 0, err[-3000:]
    assert [p.exitcode for p in reviewers] == [0, 0]

    db = Database(url)
    with db.session() as s:
        rounds = s.execute(sa.select(Round.index, Round.stage).order_by(Round.index)).all()
        assert [tuple(r) for r in rounds][-1] == (config["rounds"] - 1, "done")
        calcs = s.scalars(sa.select(Calculation.candidate_id)).all()
        assert len(calcs) == len(set(calcs)) == calcs_before + config["validation_budget"]
        notes = s.execute(sa.select(ReviewDecision.reviewer, ReviewDecision.note)).all()
        for reviewer in REVIEWERS:
            mine = sorted(int(n.split("-")[1]) for r, n in notes if r == reviewer)
            assert mine == list(range(len(mine))) and mine  # none lost, none twice
    db.dispose()


CONTESTED = ("q-0", "q-1", "q-2")  # few candidates, so that decisions collide often
DECIDERS = 4  # processes
PER_DECIDER = 75  # actions each: 300 in all


def _decide_hard(url: str, who: int, barrier) -> None:
    """Approve, reject, bulk-decide and comment on a few candidates as fast as possible: the
    web app's worker threads and several `discovery review` shells at once."""
    from discovery.engine.review_queue import comment, decide, decide_many

    db = Database(url)
    barrier.wait()
    for n in range(PER_DECIDER):
        uid = CONTESTED[(n + who) % len(CONTESTED)]
        decision = "approved" if (n + who) % 2 else "rejected"
        if n % 10 == 9:
            comment(db, 1, uid, f"p{who}", note=f"p{who}-{n}")
        elif n % 10 == 4:  # a bulk decision, its ids in another order in every process
            uids = list(CONTESTED[who % 3 :] + CONTESTED[: who % 3])
            decide_many(db, 1, uids, decision, f"p{who}", note=f"p{who}-{n}")
        else:
            decide(db, 1, uid, decision, f"p{who}", note=f"p{who}-{n}")
    db.dispose()


def test_the_queue_status_is_always_the_latest_decision(store_url):
    """Hundreds of decisions on three candidates from four processes: every queue status is
    the last decision in the candidate's history, and history order (id) is time order."""
    _prepare(store_url)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(DECIDERS)
    procs = [
        ctx.Process(target=_decide_hard, args=(store_url, k, barrier)) for k in range(DECIDERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0] * DECIDERS

    db = Database(store_url)
    with db.session() as s:
        rows = s.scalars(sa.select(ReviewDecision).order_by(ReviewDecision.id)).all()
        bulk = sum(1 for n in range(PER_DECIDER) if n % 10 == 4)
        assert len(rows) == DECIDERS * (PER_DECIDER + bulk * (len(CONTESTED) - 1))
        last, mismatches = {}, []
        by_candidate: dict[int, list] = {}
        for d in rows:
            by_candidate.setdefault(d.candidate_id, []).append(d)
            if d.decision != "comment":
                last[d.candidate_id] = d
        queue = {i.candidate_id: i for i in s.scalars(sa.select(ReviewItem))}
        for cid, d in last.items():
            if (queue[cid].status, queue[cid].updated_at) != (d.decision, d.created_at):
                mismatches.append((cid, queue[cid].status, d.decision, d.reviewer))
        assert mismatches == []
        for cid, history in by_candidate.items():
            times = [d.created_at for d in history]
            assert times == sorted(times), f"candidate {cid}: history out of time order"
    db.dispose()
