"""What a finished round reports, in one place: its metrics on the round's MLflow run and as
steps of the campaign's run, the guards' warnings as a tag, the parity plot, the shortlist so
far and the round's checkpoint as artifacts. The round loop calls it once per round."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from discovery.engine.campaign_hull import formation_energies
from discovery.engine.context import CampaignContext
from discovery.engine.parity_plot import parity_plot
from discovery.engine.shortlist import shortlist, write_export
from discovery.store import Calculation, ModelVersion, Prediction

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def report_round(ctx: CampaignContext, r: int, parent_run: str) -> dict[str, Any]:
    """Log round `r` to MLflow and close its run; returns the round's metrics."""
    with ctx.db.session() as session:
        row = ctx.round_row(session, r)
        run_id, metrics, screen_model = row.mlflow_run_id, dict(row.metrics), row.screen_model
        model = session.scalars(
            select(ModelVersion).where(
                ModelVersion.campaign_id == ctx.campaign_id, ModelVersion.round_index == r
            )
        ).first()
        if model is not None:
            model.mlflow_run_id = run_id
        checkpoint = ctx.directory / model.checkpoint if model is not None else None
        parity = _parity_data(ctx, session, r, screen_model)
    assert run_id is not None  # the round's run is started before its stages
    ctx.tracker.log_metrics(run_id, metrics)
    ctx.tracker.log_metrics(parent_run, metrics, step=r)
    if metrics.get("guard_warnings"):
        # A tag shows in the runs table of the UI, where a metric list cannot go.
        ctx.tracker.client.set_tag(run_id, "guard_warnings", " | ".join(metrics["guard_warnings"]))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        plot = parity_plot(*parity, f"round {r}: screen model {screen_model}", tmp / "parity.png")
        ctx.tracker.log_artifact(run_id, plot)
        items = shortlist(ctx.db, ctx.campaign_id, ctx.fidelities)
        ctx.tracker.log_artifact(run_id, write_export(items, "csv", tmp / "shortlist.csv"))
    if checkpoint is not None and checkpoint.exists():
        ctx.tracker.log_artifact(run_id, checkpoint, "model")
    ctx.tracker.finish(run_id)
    return metrics


def _parity_data(
    ctx: CampaignContext, session: Session, r: int, screen_model: str | None
) -> tuple[list[float], list[float], list[float]]:
    """(predicted, simulated, predicted std) formation energies of the round's validations
    by the model that screened them."""
    if screen_model is None:
        return [], [], []
    e_form = formation_energies(ctx.validated_pairs(session), ctx.config.simulator.energy_scheme)
    found = session.execute(
        select(Prediction.candidate_id, Prediction.e_form_mean, Prediction.e_form_std)
        .join(Calculation, Calculation.candidate_id == Prediction.candidate_id)
        .where(
            Prediction.model_version == screen_model,
            Calculation.round_index == r,
            Calculation.fidelity == ctx.fidelity,
        )
    ).all()
    rows = [(cid, m, s) for cid, m, s in found if cid in e_form]
    return [m for _, m, _ in rows], [e_form[c] for c, _, _ in rows], [s for _, _, s in rows]
