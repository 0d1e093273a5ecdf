"""The round loop: stages run in order; the store records the last finished stage of each
round, so `discovery run` on an existing campaign continues where it stopped."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from discovery.config import CampaignConfig, ConfigError, dump_config, load_config
from discovery.engine import reference_set as references
from discovery.engine.campaign_hull import formation_energies
from discovery.engine.context import CampaignContext
from discovery.engine.parity_plot import parity_plot
from discovery.engine.progress import StageProgress
from discovery.engine.shortlist import shortlist, write_export
from discovery.engine.stages import generate, hull, learn, promote, review, screen, validate
from discovery.engine.stages import select as select_stage
from discovery.engine.tracking import Tracker, default_tracking_uri
from discovery.store import Calculation, Campaign, Database, ModelVersion, Prediction, Round
from discovery.store.database import default_store_url
from discovery.store.schema import utcnow

log = logging.getLogger(__name__)

CONFIG_FILENAME = "campaign.yaml"
STAGE_ORDER = (
    "started", "generated", "screened", "selected", "validated", "hull", "promoted",
    "trained", "reviewed", "done",
)  # fmt: skip
PIPELINE = (
    ("generated", generate.run),
    ("screened", screen.run),
    ("selected", select_stage.run),
    ("validated", validate.run),
    ("hull", hull.run),
    ("promoted", promote.run),
    ("trained", learn.run),
    ("reviewed", review.run),
)


def store_url(config: CampaignConfig, directory: Path) -> str:
    return config.store.url or default_store_url(directory)


def tracking_uri(config: CampaignConfig, directory: Path) -> str:
    return config.tracking.uri or default_tracking_uri(directory)


def _comparable(config: CampaignConfig) -> dict:
    # Extending a campaign by more rounds is allowed; anything else would mix two campaigns.
    data = config.model_dump(mode="json")
    data.pop("rounds")
    return data


def prepare_directory(config: CampaignConfig, directory: Path) -> None:
    """Create the campaign dir, or check that an existing one holds the same campaign."""
    saved = directory / CONFIG_FILENAME
    if saved.exists():
        previous = load_config(saved)
        if _comparable(previous) != _comparable(config):
            raise ConfigError(
                f"{directory} holds a different campaign ({previous.name}); "
                "use a new --dir or the same config"
            )
    directory.mkdir(parents=True, exist_ok=True)
    saved.write_text(dump_config(config))


def open_context(
    config: CampaignConfig, directory: Path, progress: StageProgress
) -> CampaignContext:
    db = Database(store_url(config, directory))
    tracker = Tracker(
        tracking_uri(config, directory),
        config.tracking.experiment or config.name,
        directory / "mlartifacts",
    )
    with db.session() as session:
        row = session.scalars(select(Campaign).where(Campaign.name == config.name)).first()
        if row is None:
            row = Campaign(name=config.name, config_yaml=dump_config(config))
            session.add(row)
            session.flush()
        campaign_id = row.id
    return CampaignContext(config, directory, db, tracker, campaign_id, progress)


def run_campaign(
    config: CampaignConfig, directory: Path, progress: StageProgress | None = None
) -> CampaignContext:
    directory = Path(directory)
    prepare_directory(config, directory)
    ctx = open_context(config, directory, progress or StageProgress())
    with ctx.db.session() as session:
        camp = session.get(Campaign, ctx.campaign_id)
        camp.status = "running"
        parent = ctx.tracker.start_parent(
            camp.mlflow_run_id, config.name, config.model_dump(mode="json")
        )
        camp.mlflow_run_id = parent
    ctx.tracker.client.log_text(parent, dump_config(config), "campaign.yaml")
    references.ensure_references(ctx)
    ctx.tracker.log_metrics(parent, references.chemical_potential_report(ctx))
    try:
        for r in range(config.rounds):
            _run_round(ctx, r, parent)
    finally:
        ctx.close()
    with ctx.db.session() as session:
        session.get(Campaign, ctx.campaign_id).status = "finished"
    ctx.tracker.finish(parent)
    return ctx


def _round(ctx: CampaignContext, session, r: int) -> Round:
    row = session.scalars(
        select(Round).where(Round.campaign_id == ctx.campaign_id, Round.index == r)
    ).first()
    if row is None:
        row = Round(campaign_id=ctx.campaign_id, index=r, stage="started", metrics={})
        session.add(row)
        session.flush()
    return row


def _run_round(ctx: CampaignContext, r: int, parent_run: str) -> None:
    with ctx.db.session() as session:
        row = _round(ctx, session, r)
        if row.stage == "done":
            return
        if row.stage != "started":
            log.info("round %d: resuming after stage '%s'", r, row.stage)
        row.mlflow_run_id = ctx.tracker.start_round(row.mlflow_run_id, parent_run, r)
        stage = row.stage
    for name, fn in PIPELINE:
        if STAGE_ORDER.index(stage) >= STAGE_ORDER.index(name):
            continue
        t0 = time.perf_counter()
        fn(ctx, r)
        elapsed = time.perf_counter() - t0
        with ctx.db.session() as session:
            row = ctx.round_row(session, r)
            m = dict(row.metrics or {})
            m["wall_s"] = m.get("wall_s", 0.0) + elapsed
            m[f"wall_{name}_s"] = m.get(f"wall_{name}_s", 0.0) + elapsed
            row.metrics = m
    _finish_round(ctx, r, parent_run)


def _finish_round(ctx: CampaignContext, r: int, parent_run: str) -> None:
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
    ctx.tracker.log_metrics(run_id, metrics)
    ctx.tracker.log_metrics(parent_run, metrics, step=r)
    if metrics.get("guard_warnings"):
        # A tag shows in the runs table of the UI, where a metric list cannot go.
        ctx.tracker.client.set_tag(run_id, "guard_warnings", " | ".join(metrics["guard_warnings"]))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plot = parity_plot(*parity, f"round {r}: screen model {screen_model}", tmp / "parity.png")
        ctx.tracker.log_artifact(run_id, plot)
        items = shortlist(ctx.db, ctx.campaign_id, ctx.fidelities)
        ctx.tracker.log_artifact(run_id, write_export(items, "csv", tmp / "shortlist.csv"))
    if checkpoint is not None and checkpoint.exists():
        ctx.tracker.log_artifact(run_id, checkpoint, "model")
    ctx.tracker.finish(run_id)
    with ctx.db.session() as session:
        row = ctx.mark_stage(session, r, "done")
        row.finished_at = utcnow()
    log.info(
        "round %d: validated %s, stable %s, hit rate %.2f",
        r, metrics.get("validated"), metrics.get("stable"), metrics.get("hit_rate") or 0.0,
    )  # fmt: skip


def _parity_data(ctx: CampaignContext, session, r: int, screen_model: str | None):
    if screen_model is None:
        return [], [], []
    e_form = formation_energies(ctx.validated_pairs(session), ctx.config.simulator.formation_energy)
    rows = session.execute(
        select(Prediction.candidate_id, Prediction.e_form_mean, Prediction.e_form_std)
        .join(Calculation, Calculation.candidate_id == Prediction.candidate_id)
        .where(
            Prediction.model_version == screen_model,
            Calculation.round_index == r,
            Calculation.fidelity == ctx.fidelity,
        )
    ).all()
    rows = [(cid, m, s) for cid, m, s in rows if cid in e_form]
    return [m for _, m, _ in rows], [e_form[c] for c, _, _ in rows], [s for _, _, s in rows]
