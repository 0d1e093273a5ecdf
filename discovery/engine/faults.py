"""Fault injection: a testing aid for crash safety, inert unless asked for.

    DISCOVERY_FAULT=<stage>:<n>[:<round>] discovery run campaign.yaml

makes the process SIGKILL itself at the n-th fault point of `<stage>` (counting only points
in round `<round>`, when given): a real kill, no cleanup, no flush, as an out-of-memory kill
or a pulled plug would do. `tests/test_resume.py` uses it to kill a campaign at a known
place inside each stage and checks that `discovery run` then finishes with the same store
as an uninterrupted run, redoing nothing that was committed.

The stages and where their points are (stage names as the store's `rounds.stage` spells them):

- generated: the round's candidates are flushed into the open transaction, not committed;
- screened: the predictions are flushed, not committed;
- selected: the picks are flushed, not committed;
- validated: after each committed relaxation (results are committed one by one);
- hull: the hull rows are flushed, not committed;
- trained: after each epoch of each ensemble member (mid-training, nothing saved);
- reviewed: the review-queue rows are flushed, not committed;
- labelled: `discovery pretrain`, after each committed teacher label (round 0).

The variable is read once, at import; with it unset `point` returns at its first test.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass

log = logging.getLogger(__name__)

ENV = "DISCOVERY_FAULT"
STAGES = (
    "generated", "screened", "selected", "validated", "hull", "trained", "reviewed", "labelled",
)  # fmt: skip


@dataclass(frozen=True)
class Fault:
    stage: str
    n: int
    round_index: int | None = None


def parse(text: str | None) -> Fault | None:
    """`<stage>:<n>[:<round>]` -> Fault; None or '' -> None."""
    if not text:
        return None
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3) or parts[0] not in STAGES:
            raise ValueError
        fault = Fault(parts[0], int(parts[1]), int(parts[2]) if len(parts) == 3 else None)
        if fault.n < 1:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"{ENV}={text!r}: expected <stage>:<n>[:<round>] with n >= 1 and stage one of "
            f"{', '.join(STAGES)}"
        ) from None
    return fault


_FAULT = parse(os.environ.get(ENV))
_seen = 0


def point(stage: str, round_index: int) -> None:
    """A place where a crash must be survivable; kills the process if DISCOVERY_FAULT says so."""
    if _FAULT is None or stage != _FAULT.stage:
        return
    if _FAULT.round_index is not None and round_index != _FAULT.round_index:
        return
    global _seen
    _seen += 1
    if _seen >= _FAULT.n:
        log.warning(
            "%s: killing this process at %s point %d of round %d", ENV, stage, _seen, round_index
        )
        os.kill(os.getpid(), signal.SIGKILL)
