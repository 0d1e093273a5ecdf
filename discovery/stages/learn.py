"""Active learning: retrain (or fine-tune) the ensemble on everything validated so far."""

from __future__ import annotations

import logging

from sqlalchemy import select

from discovery.context import CampaignContext
from discovery.stages.hull import formation_energies
from discovery.store import ModelVersion
from discovery.store.convert import structure_from_json
from discovery.store.queries import validated_pairs

log = logging.getLogger(__name__)

# A formation energy beyond this is a broken relaxation, not chemistry worth learning.
MAX_ABS_E_FORM = 10.0


def gnn_settings(ctx: CampaignContext):
    from models import GNNSettings

    m = ctx.config.model
    return GNNSettings(cutoff=m.cutoff, hidden=m.hidden, layers=m.layers)


def latest_model(ctx: CampaignContext, session, before_round: int) -> ModelVersion | None:
    return session.scalars(
        select(ModelVersion)
        .where(ModelVersion.campaign_id == ctx.campaign_id, ModelVersion.round_index < before_round)
        .order_by(ModelVersion.round_index.desc())
    ).first()


def load_ensemble(ctx: CampaignContext, model: ModelVersion):
    from models import Ensemble

    return Ensemble.load(
        ctx.directory / model.checkpoint, device=ctx.config.model.device, expect=gnn_settings(ctx)
    )


def training_set(session, campaign_id: int, fidelity: str):
    """Initial and relaxed structure of every validated entry, both labelled with the relaxed
    formation energy: the screen sees unrelaxed candidates, so the model learns that map."""
    pairs = validated_pairs(session, campaign_id, fidelity)
    e_form = formation_energies(pairs)
    structures, targets, ids = [], [], []
    for cand, calc in pairs:
        y = e_form.get(cand.id)
        if y is None or abs(y) > MAX_ABS_E_FORM:
            continue
        structures.append(structure_from_json(cand.structure))
        targets.append(y)
        if calc.final_structure is not None:
            structures.append(structure_from_json(calc.final_structure))
            targets.append(y)
        ids.append(cand.uid)
    return structures, targets, ids


def run(ctx: CampaignContext, round_index: int) -> None:
    from models import Ensemble, TrainSettings

    m = ctx.config.model
    version = f"r{round_index}"
    with ctx.db.session() as session:
        structures, targets, ids = training_set(session, ctx.campaign_id, ctx.fidelity)
        previous = latest_model(ctx, session, before_round=round_index)
        init = load_ensemble(ctx, previous) if (m.retrain == "finetune" and previous) else None
    ensemble = Ensemble(
        gnn_settings(ctx),
        n_members=m.n_members,
        seed=ctx.config.seed * 1000 + round_index,
        device=m.device,
    )
    train = TrainSettings(
        epochs=m.epochs, lr=m.learning_rate, batch_size=m.batch_size, weight_decay=m.weight_decay
    )
    with ctx.progress.stage(f"round {round_index}: train ({len(ids)} entries)", 1) as task:
        report = ensemble.fit(structures, targets, train, init_from=init)
        task.advance()
    metrics = {
        "train_entries": len(ids),
        "train_mae": report.train_mae,
        "val_mae": report.val_mae,
        "train_wall_s": report.wall_s,
    }
    ctx.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    rel_path = f"checkpoints/{version}.pt"
    ensemble.save(
        ctx.directory / rel_path,
        extra={"round": round_index, "version": version, "train_ids": ids, "metrics": metrics},
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
        ctx.mark_stage(session, round_index, "trained", metrics)
