"""The round loop: stages run in order; the store records the last finished stage of each
round, so `discovery run` on an existing campaign continues where it stopped."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from discovery.config import CampaignConfig, ConfigError, dump_config
from discovery.domain.known.phase import KnownPhase, KnownSourceError
from discovery.engine import reference_set as references
from discovery.engine.campaign_directory import STORE_FILE, CampaignDirectory
from discovery.engine.context import CampaignContext
from discovery.engine.initial_model import init_checkpoint, register_init_model
from discovery.engine.known_phases import known_phases_in_store, remember_fetched
from discovery.engine.progress import StageProgress
from discovery.engine.round_report import report_round
from discovery.engine.stages import generate, hull, learn, promote, review, screen, validate
from discovery.engine.stages import select as select_stage
from discovery.engine.tracking import Tracker
from discovery.store import Campaign, Round
from discovery.store.schema import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

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


def open_context(
    config: CampaignConfig, location: CampaignDirectory, progress: StageProgress
) -> CampaignContext:
    """The campaign's store (created or upgraded) and tracker, ready for the stages."""
    camp = location.open(config, read_only=False)
    try:
        tracker = Tracker(
            location.tracking_uri(config), config.tracking.experiment or config.name,
            location.artifact_dir,
        )  # fmt: skip
    except BaseException:
        camp.db.dispose()
        raise
    return CampaignContext(
        camp.config, camp.location, camp.db, camp.campaign_id, tracker=tracker, progress=progress
    )


def run_campaign(
    config: CampaignConfig, directory: Path, progress: StageProgress | None = None
) -> CampaignContext:
    """Run `config` in `directory` from where it stopped (a fresh directory starts at round 0)
    and return its context once every round is done."""
    location = CampaignDirectory(Path(directory))
    # Every problem a person can fix is reported before anything is created; a set-up that
    # fails anyway (a database server that refuses) leaves nothing behind. Known phases come
    # first too: a source that cannot be read stops the run before anything exists.
    location.preflight(config)
    init = init_checkpoint(config)
    phases = _known_phases(config, location)
    with location.setting_up(config):
        location.prepare(config)
        ctx = open_context(config, location, progress or StageProgress())
        try:
            remember_fetched(ctx.db, phases)
            register_init_model(ctx, init)
            parent = _start_parent_run(ctx, config)
            if init is not None:
                ctx.tracker.set_tags(parent, {"model.init": str(init)})
        except BaseException:
            ctx.db.dispose()
            raise
    references.ensure_references(ctx, phases)
    ctx.tracker.log_metrics(parent, references.chemical_potential_report(ctx))
    try:
        for r in range(config.rounds):
            _run_round(ctx, r, parent)
    finally:
        ctx.close()
    with ctx.db.session() as session:
        session.get_one(Campaign, ctx.campaign_id).status = "finished"
    ctx.tracker.finish(parent)
    return ctx


def _start_parent_run(ctx: CampaignContext, config: CampaignConfig) -> str:
    with ctx.db.session() as session:
        camp = session.get_one(Campaign, ctx.campaign_id)
        camp.status = "running"
        parent = ctx.tracker.start_parent(
            camp.mlflow_run_id, config.name, config.model_dump(mode="json")
        )
        camp.mlflow_run_id = parent
    ctx.tracker.client.log_text(parent, dump_config(config), "campaign.yaml")
    return parent


def _known_phases(config: CampaignConfig, location: CampaignDirectory) -> list[KnownPhase]:
    """The known phases, from the campaign's store where it already exists (an earlier fetch
    of the Materials Project, or `discovery references fetch`, is not repeated); a source's
    error becomes a ConfigError."""
    if not config.references.sources:
        return []
    url: str | None = location.store_url(config)
    if url is not None and url.startswith("sqlite:") and not (location.path / STORE_FILE).is_file():
        url = None  # no store yet: looking must not create one
    try:
        return known_phases_in_store(config, url)
    except KnownSourceError as err:
        raise ConfigError(f"invalid value for 'references.sources': {err}") from None


def _round(ctx: CampaignContext, session: Session, r: int) -> Round:
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
    metrics = report_round(ctx, r, parent_run)
    with ctx.db.session() as session:
        row = ctx.mark_stage(session, r, "done")
        row.finished_at = utcnow()
    log.info(
        "round %d: validated %s, stable %s, hit rate %.2f",
        r, metrics.get("validated"), metrics.get("stable"), metrics.get("hit_rate") or 0.0,
    )  # fmt: skip
