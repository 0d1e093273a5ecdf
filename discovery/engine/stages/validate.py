"""The validate stage: relax the round's selected candidates on the first rung."""

from __future__ import annotations

from discovery.engine.context import CampaignContext
from discovery.engine.relaxation import pending, relax_and_record


def run(ctx: CampaignContext, round_index: int) -> None:
    """Relax the selected candidates with the simulator and record their results."""
    with ctx.db.session() as session:
        todo = [c.id for c in pending(ctx, session, "selected")]
    with ctx.progress.stage(f"round {round_index}: validate", len(todo)) as task:
        relax_and_record(ctx, todo, round_index, task)
    with ctx.db.session() as session:
        ctx.mark_stage(session, round_index, "validated")
