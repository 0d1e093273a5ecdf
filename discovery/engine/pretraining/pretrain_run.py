"""`discovery pretrain`: generate the synthetic set, label it with the teacher, train the
ensemble on the labels and write a versioned checkpoint with its data card.

The output directory holds the run's store (the campaign tables: one candidate row per
structure, one calculation row per teacher label), its MLflow runs, the checkpoint and the
card. The store records the last finished step, so a run killed at any point resumes where
it stopped; labels committed before the kill are never computed again."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from discovery.config import ConfigError, PretrainConfig, dump_pretrain_config
from discovery.domain.synthetic_share import balanced_sample
from discovery.engine.ensembles import settings_for
from discovery.engine.executors import Executor, executor_for
from discovery.engine.pretraining.data_card import write_card
from discovery.engine.pretraining.label_targets import training_set
from discovery.engine.pretraining.synthetic_set import generate_set
from discovery.engine.pretraining.teacher_labels import (
    label_count,
    label_set,
    planned_labels,
    relaxed_fidelity,
)
from discovery.engine.progress import StageProgress
from discovery.engine.replay_set import replay_path, sha256, write_replay
from discovery.engine.tracking import Tracker
from discovery.store import Campaign, Database, Round
from discovery.store.convert import candidate_row
from discovery.store.schema import utcnow

log = logging.getLogger(__name__)

STORE_FILE = "pretrain.db"
TRACKING_FILE = "mlflow.db"
ARTIFACT_DIR = "mlartifacts"
# Steps of a run, in order, as the store's round row records them.
STEPS = ("started", "generated", "labelled", "done")


@dataclass
class PretrainResult:
    """Where a finished run put its checkpoint and data card, and what this run labelled."""

    checkpoint: Path
    card_json: Path
    card_markdown: Path
    labelled_now: int
    card: dict[str, Any] = field(default_factory=dict)


def output_paths(config: PretrainConfig, out: Path) -> tuple[Path, Path]:
    """(checkpoint, data card JSON) of a run in `out`."""
    return out / f"{config.label}.pt", out / f"{config.label}.card.json"


def _open_store(config: PretrainConfig, out: Path) -> tuple[Database, int]:
    db = Database(config.store.url or f"sqlite:///{out / STORE_FILE}")
    text = dump_pretrain_config(config)
    name = f"pretrain:{config.label}"
    with db.session() as session:
        camp = session.scalars(select(Campaign).where(Campaign.name == name)).first()
        if camp is None:
            camp = Campaign(name=name, config_yaml=text, status="running")
            session.add(camp)
            session.flush()
            session.add(Round(campaign_id=camp.id, index=0, stage="started", metrics={}))
        elif camp.config_yaml != text:
            db.dispose()
            raise ConfigError(
                f"{out} holds pretraining run {config.label} made with another config; "
                "give a new --out or a new version"
            )
        return db, camp.id


def _round(session, campaign_id: int) -> Round:
    return session.scalars(
        select(Round).where(Round.campaign_id == campaign_id, Round.index == 0)
    ).one()


def run_pretraining(
    config: PretrainConfig, out: Path, progress: StageProgress | None = None
) -> PretrainResult:
    """Run (or resume) the pretraining `config` in `out`."""
    progress = progress or StageProgress(False)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    db, campaign_id = _open_store(config, out)
    executors: list[Executor] = []

    def executor() -> Executor:
        if not executors:
            executors.append(executor_for(config.executor))
        return executors[0]

    try:
        tracker = Tracker(
            config.tracking.uri or f"sqlite:///{out / TRACKING_FILE}",
            config.tracking.experiment or f"pretrain-{config.name}",
            out / ARTIFACT_DIR,
        )
        with db.session() as session:
            camp = session.get_one(Campaign, campaign_id)
            camp.mlflow_run_id = tracker.start_parent(
                camp.mlflow_run_id, config.label, config.model_dump(mode="json")
            )
            run_id = camp.mlflow_run_id
            stage = _round(session, campaign_id).stage
        tracker.set_tags(run_id, {"kind": "pretrain", "version": config.version})
        if stage == "started":
            _generate(config, db, campaign_id, progress)
        before = label_count(db, campaign_id)
        total = planned_labels(db, campaign_id, config)
        if before:
            log.info("pretrain: resuming, %d of %d labels already committed", before, total)
        with progress.stage("pretrain: label", total) as task:
            task.advance(before)
            labelled_now = label_set(db, campaign_id, config, executor, task)
        log.info("pretrain: labelled %d structures now (%d before)", labelled_now, before)
        with db.session() as session:
            row = _round(session, campaign_id)
            if row.stage == "generated":
                row.stage = "labelled"
            data = training_set(session, campaign_id, config)
            generation = {
                k.removeprefix("generation_"): v
                for k, v in (row.metrics or {}).items()
                if k.startswith("generation_")
            }
        result = _train_and_write(config, out, data, generation, tracker, run_id, progress)
        result.labelled_now = labelled_now
        with db.session() as session:
            row = _round(session, campaign_id)
            row.stage, row.finished_at = "done", utcnow()
            row.metrics = {**(row.metrics or {}), "labelled_last_run": labelled_now}
            session.get_one(Campaign, campaign_id).status = "finished"
        tracker.finish(run_id)
        return result
    finally:
        for ex in executors:
            ex.close()
        db.dispose()


def _generate(config: PretrainConfig, db: Database, campaign_id: int, progress) -> None:
    gen = config.generation
    budget = (gen.substitution.budget + gen.random.budget + gen.partial.budget) * len(
        config.chemical_systems
    )
    with progress.stage("pretrain: generate", budget) as task:
        synthetic = generate_set(config, task)
    with db.session() as session:
        for k, rec in enumerate(synthetic.references):
            session.add(candidate_row(rec, campaign_id, f"ref-{k:04d}", 0, True))
        for k, rec in enumerate(synthetic.records):
            session.add(candidate_row(rec, campaign_id, f"s-{k:06d}", 0, False))
        row = _round(session, campaign_id)
        row.stage = "generated"
        row.metrics = {f"generation_{k}": v for k, v in synthetic.stats.items()}
    log.info(
        "pretrain: %d structures over %d systems, %d references, %d to relax",
        len(synthetic.records), len(config.chemical_systems), len(synthetic.references),
        synthetic.stats.get("planned_relax", 0),
    )  # fmt: skip


def _write_replay(config: PretrainConfig, data, path: Path) -> dict[str, Any]:
    """Write the training entries a campaign replays when it fine-tunes from the checkpoint
    (at most `replay_max`, balanced across chemical systems); what the card says of them."""
    entries = data.entries
    if len(entries) > config.replay_max:
        keep = balanced_sample([e.chemsys for e in entries], config.replay_max, config.seed)
        entries = [entries[i] for i in keep]
    digest = write_replay(path, entries)
    log.info("pretrain: replay set %s (%d of %d entries)", path, len(entries), len(data.entries))
    return {"file": path.name, "sha256": digest, "entries": len(entries)}


def _train_and_write(
    config: PretrainConfig,
    out: Path,
    data,
    generation: dict[str, Any],
    tracker: Tracker,
    run_id: str,
    progress,
) -> PretrainResult:
    from models import Ensemble, TrainSettings

    if not data.structures:
        raise RuntimeError("pretrain: no usable labels to train on (see the failed labels)")
    m = config.model
    ensemble = Ensemble(
        settings_for(m.kind, m.cutoff, m.hidden, m.layers),
        n_members=m.n_members,
        seed=config.seed,
        device=m.device,
    )
    train = TrainSettings(
        epochs=m.epochs, lr=m.learning_rate, batch_size=m.batch_size, weight_decay=m.weight_decay
    )
    history: dict[str, list[tuple[int, float]]] = {}

    def on_epoch(entry) -> None:
        history.setdefault(f"train_loss_member{entry.member}", []).append(
            (entry.epoch, entry.train_loss)
        )

    with progress.stage(f"pretrain: train ({len(data.uids)} entries)", 1) as task:
        report = ensemble.fit(data.structures, data.targets, train, on_epoch=on_epoch)
        task.advance()
    checkpoint, card_json = output_paths(config, out)
    replay = _write_replay(config, data, replay_path(checkpoint))
    training = {
        "train_mae": report.train_mae,
        "val_mae": report.val_mae,
        "train_wall_s": report.wall_s,
        "variance_scale": report.variance_scale,
    }
    teacher = config.teacher
    card: dict[str, Any] = {
        "name": config.name,
        "version": config.version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "checkpoint": checkpoint.name,
        "chemical_systems": config.chemical_systems,
        "elements": data.card["elements"],
        "teacher": {
            "name": teacher.name,
            "fidelity": relaxed_fidelity(config),
            "formation_energy": teacher.formation_energy,
            "fmax": teacher.fmax,
            "max_steps": teacher.max_steps,
            "relax_cell": teacher.relax_cell,
        },
        "generation": generation,
        "label_plan": config.labels.model_dump(mode="json"),
        "labels": data.card,
        "model": {
            "kind": m.kind,
            "cutoff": m.cutoff,
            "hidden": m.hidden,
            "layers": m.layers,
            "n_members": m.n_members,
            "epochs": m.epochs,
        },  # fmt: skip
        "training": training,
        "replay": replay,
    }
    ensemble.save(
        checkpoint,
        extra={
            "pretrain": {
                "name": config.name,
                "version": config.version,
                "data_card": card_json.name,
                "teacher": teacher.name,
                "formation_energy": teacher.formation_energy,
                "replay": replay["file"],
            },
            "elements": data.card["elements"],
            "n_train": len(data.uids),
            "metrics": training,
        },
    )
    card["checkpoint_sha256"] = sha256(checkpoint)
    card_md = write_card(card, card_json)
    log.info(
        "pretrain: checkpoint %s (train MAE %.3f eV/atom on %d entries), data card %s",
        checkpoint, report.train_mae, len(data.uids), card_json,
    )  # fmt: skip
    corr = data.card["correction"]
    metrics = {
        "entries": len(data.uids),
        "train_mae": report.train_mae,
        "val_mae": report.val_mae,
        "correction_pairs": corr["n_pairs"],
        **{f"label_loo_mae_{k}": v for k, v in corr["loo_mae"].items()},
    }
    tracker.log_metrics(run_id, metrics)
    tracker.log_history(run_id, history)
    tracker.set_tags(run_id, {"correction": corr["method"], "checkpoint": checkpoint.name})
    for path in (card_json, card_md):
        tracker.log_artifact(run_id, path, "data_card")
    return PretrainResult(checkpoint, card_json, card_md, 0, card)
