"""Queue the round's best stable, novel candidates for human review."""

from __future__ import annotations

from discovery.engine import faults
from discovery.engine.context import CampaignContext
from discovery.engine.review_queue import fill_queue


def run(ctx: CampaignContext, round_index: int) -> None:
    """Queue up to `review_size` of this round's new stable, novel candidates for review
    (see `fill_queue`)."""
    with ctx.progress.stage(f"round {round_index}: review queue", 1) as task:
        with ctx.db.session() as session:
            added = fill_queue(
                session,
                ctx.campaign_id,
                ctx.fidelity,
                round_index,
                ctx.config.review_size,
                ctx.fidelities[1:],
            )
            ctx.mark_stage(session, round_index, "reviewed", {"queued": added})
            faults.point("reviewed", round_index)
        task.advance()
