"""Active learning: retrain (or fine-tune) the ensemble on everything validated so far."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from discovery.config import INIT_SCRATCH
from discovery.domain.synthetic_share import balanced_sample, synthetic_count, synthetic_share
from discovery.engine import faults
from discovery.engine.context import CampaignContext
from discovery.engine.ensembles import (
    latest_model,
    load_ensemble,
    model_settings,
    training_set,
)
from discovery.engine.initial_model import init_replay
from discovery.engine.replay_set import ReplayEntry, read_replay, with_replay
from discovery.engine.round_guards import holdout_reference_ids, round_guards
from discovery.store import ModelVersion
from discovery.store.cached_graphs import StoreGraphCache

if TYPE_CHECKING:
    from models.records import EpochLog

log = logging.getLogger(__name__)


def _log_curves(ctx: CampaignContext, round_index: int, curves: list[EpochLog]) -> None:
    """Per-member loss curves (step = epoch) on the round's MLflow run, where the UI plots
    them. A resumed round that retrains logs them again over the same steps."""
    with ctx.db.session() as session:
        run_id = ctx.round_row(session, round_index).mlflow_run_id
    if run_id is None:
        return
    history: dict[str, list[tuple[int, float]]] = {}
    for entry in curves:
        history.setdefault(f"train_loss_member{entry.member}", []).append(
            (entry.epoch, entry.train_loss)
        )
        if entry.val_mae is not None:
            history.setdefault(f"val_mae_member{entry.member}", []).append(
                (entry.epoch, entry.val_mae)
            )
    ctx.tracker.log_history(run_id, history)


def replay_sample(ctx: CampaignContext, round_index: int, n_real: int) -> list[ReplayEntry]:
    """The synthetic entries this round replays: none from scratch or without a replay set,
    else a seeded draw (seed and round index: a resumed round draws the same) whose size falls
    as real entries grow (discovery.domain.synthetic_share)."""
    replay = ctx.config.model.replay
    if ctx.config.model.init == INIT_SCRATCH or not replay.enabled:
        return []
    path = init_replay(ctx)
    if path is None:
        return []
    entries = read_replay(path)
    n = min(synthetic_count(replay.size, replay.halving, n_real), len(entries))
    keep = balanced_sample([e.chemsys for e in entries], n, [ctx.config.seed, round_index])
    return [entries[i] for i in keep]


def run(ctx: CampaignContext, round_index: int) -> None:
    """Retrain the ensemble on every validated structure but the held-out references, save its
    checkpoint and record the round's guards."""
    from models import Ensemble, TrainSettings

    m = ctx.config.model
    version = f"r{round_index}"
    with ctx.db.session() as session:
        holdout = holdout_reference_ids(ctx, session)
        structures, targets, ids = training_set(
            session,
            ctx.campaign_id,
            ctx.fidelity,
            frozenset(holdout),
            ctx.config.simulator.energy_scheme,
        )
        previous = latest_model(ctx, session, before_round=round_index)
        # A campaign that starts from a checkpoint keeps what it learnt: every round
        # fine-tunes from the model before it.
        finetune = m.retrain == "finetune" or m.init != INIT_SCRATCH
        init = load_ensemble(ctx, previous) if (finetune and previous) else None
    synthetic = replay_sample(ctx, round_index, len(ids))
    structures, targets, weights = with_replay(structures, targets, synthetic, m.replay.weight)
    ensemble = Ensemble(
        model_settings(ctx),
        n_members=m.n_members,
        seed=ctx.config.seed * 1000 + round_index,
        device=m.device,
    )
    train = TrainSettings(
        epochs=m.epochs, lr=m.learning_rate, batch_size=m.batch_size, weight_decay=m.weight_decay
    )
    curves: list[EpochLog] = []

    def on_epoch(entry: EpochLog) -> None:
        curves.append(entry)
        faults.point("trained", round_index)

    title = f"round {round_index}: train ({len(ids)} entries, {len(synthetic)} synthetic)"
    with ctx.progress.stage(title, 1) as task:
        report = ensemble.fit(
            structures,
            targets,
            train,
            init_from=init,
            on_epoch=on_epoch,
            graph_cache=StoreGraphCache(ctx.db),
            weights=weights,
        )
        task.advance()
    metrics = {
        "train_entries": len(ids),
        # Real (simulator-validated) against replayed teacher-labelled entries.
        "train_real": len(ids),
        "train_synthetic": len(synthetic),
        "synthetic_share": synthetic_share(len(ids), len(synthetic)),
        "synthetic_weight": m.replay.weight if synthetic else None,
        "train_mae": report.train_mae,
        "val_mae": report.val_mae,
        "train_wall_s": report.wall_s,
        "variance_scale": report.variance_scale,
        **{f"val_{k}": v for k, v in report.calibration.items()},
    }
    _log_curves(ctx, round_index, curves)
    ctx.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    rel_path = f"checkpoints/{version}.pt"
    ensemble.save(
        ctx.directory / rel_path,
        extra={
            "round": round_index,
            "version": version,
            "train_ids": ids,
            "replay_ids": [e.uid for e in synthetic],
            "metrics": metrics,
        },
    )
    log.info("model %s: train MAE %.3f eV/atom on %d entries", version, report.train_mae, len(ids))
    with ctx.db.session() as session:
        old = session.scalars(
            select(ModelVersion).where(
                ModelVersion.campaign_id == ctx.campaign_id, ModelVersion.version == version
            )
        ).first()
        if old is not None:  # a resumed round retrained after a kill; keep the newer weights
            session.delete(old)
            session.flush()
        session.add(
            ModelVersion(
                campaign_id=ctx.campaign_id,
                version=version,
                round_index=round_index,
                n_train=len(ids),
                checkpoint=rel_path,
                metrics=metrics,
            )
        )
        if ctx.config.guards.enabled:
            metrics.update(
                round_guards(
                    ctx,
                    session,
                    round_index,
                    ensemble,
                    holdout,
                    n_train=len(ids),
                    synthetic=(len(ids), metrics["synthetic_share"]) if synthetic else None,
                )
            )
        ctx.mark_stage(session, round_index, "trained", metrics)
