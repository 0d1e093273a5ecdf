"""Hyper-parameter search for the screening model (crystal GNN or composition model) with
Optuna, on a campaign's validated data.

The study lives in `optuna.db` in the campaign dir (SQLite), so a second `discovery tune`
continues it: finished and pruned trials are kept and only the missing ones run. Each trial
trains one member and reports its validation MAE every epoch from inside the training loop,
where the median pruner can stop it. Every trial is a nested MLflow run under a "tune" run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

from discovery.engine.campaign_directory import OpenCampaign
from discovery.engine.ensembles import settings_for, training_set
from discovery.engine.tracking import Tracker

log = logging.getLogger(__name__)

STUDY_DB = "optuna.db"
_DONE = (TrialState.COMPLETE, TrialState.PRUNED)
HEARTBEAT_S = 2


@dataclass(frozen=True)
class TuneResult:
    best_params: dict
    best_val_mae: float
    trials_done: int
    output: Path


def _suggest(trial: optuna.Trial, kind: str) -> dict:
    # The composition model has no graph cutoff to tune.
    cutoff = {}
    if kind != "composition":
        cutoff["cutoff"] = trial.suggest_float("cutoff", 4.0, 6.0, step=0.5)
    return {
        **cutoff,
        "hidden": trial.suggest_int("hidden", 16, 96, step=16),
        "layers": trial.suggest_int("layers", 2, 4),
        "learning_rate": trial.suggest_float("learning_rate", 3e-4, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64]),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
    }


def _objective(camp: OpenCampaign, structures, targets, epochs: int, tracker, parent_run):
    from models import Ensemble, TrainSettings
    from models.records import EpochLog

    model = camp.config.model

    def objective(trial: optuna.Trial) -> float:
        p = _suggest(trial, model.kind)
        run = tracker.client.create_run(
            tracker.experiment_id,
            run_name=f"trial-{trial.number}",
            tags={"mlflow.parentRunId": parent_run, "optuna_trial": str(trial.number)},
        )
        run_id = run.info.run_id
        tracker.log_params(run_id, p)

        def report(log: EpochLog) -> None:
            if log.member != 0 or log.val_mae is None:
                return
            trial.report(log.val_mae, log.epoch)
            tracker.log_metrics(
                run_id, {"val_mae": log.val_mae, "train_loss": log.train_loss}, step=log.epoch
            )
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {log.epoch}")

        ensemble = Ensemble(
            settings_for(model.kind, p.get("cutoff", model.cutoff), p["hidden"], p["layers"]),
            n_members=1,
            seed=camp.config.seed,
            device=model.device,
        )
        train = TrainSettings(
            epochs=epochs,
            lr=p["learning_rate"],
            batch_size=p["batch_size"],
            weight_decay=p["weight_decay"],
            val_fraction=0.2,
        )
        try:
            result = ensemble.fit(structures, targets, train, on_epoch=report)
        except optuna.TrialPruned:
            tracker.finish(run_id, "KILLED")
            raise
        # Without a validation split (tiny data) the training error is all there is.
        score = result.val_mae if result.val_mae is not None else result.train_mae
        tracker.log_metrics(run_id, {"best_val_mae": score})
        tracker.finish(run_id)
        return float(score)

    return objective


def tune(camp: OpenCampaign, trials: int, output: Path, epochs: int | None = None) -> TuneResult:
    """Search the model's hyperparameters with Optuna on the campaign's validated data (the
    study resumes across calls) and write the best settings to `output`."""
    with camp.db.session() as session:
        structures, targets, ids = training_set(
            session,
            camp.campaign_id,
            camp.fidelity,
            scheme=camp.config.simulator.energy_scheme,
        )
    if len(ids) < 8:
        raise ValueError(
            f"only {len(ids)} validated entries in {camp.directory}: run more rounds first"
        )
    # Heartbeats let a resumed study mark the trial a killed process left RUNNING as FAIL.
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{(camp.directory / STUDY_DB).resolve()}",
        heartbeat_interval=HEARTBEAT_S,
        grace_period=2 * HEARTBEAT_S,
    )
    study = optuna.create_study(
        study_name=f"{camp.config.name}-{camp.config.model.kind}",
        storage=storage,
        load_if_exists=True,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=camp.config.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=5),
    )
    done = sum(1 for t in study.trials if t.state in _DONE)
    remaining = max(0, trials - done)
    log.info("study %s: %d trials done, %d to run", study.study_name, done, remaining)
    if remaining:
        tracker = Tracker(
            camp.location.tracking_uri(camp.config),
            camp.config.tracking.experiment or camp.config.name,
            camp.location.artifact_dir,
        )
        parent = study.user_attrs.get("mlflow_run_id")
        parent = tracker.start_parent(parent, "tune", {"trials": trials, "entries": len(ids)})
        study.set_user_attr("mlflow_run_id", parent)
        objective = _objective(
            camp, structures, targets, epochs or camp.config.model.epochs, tracker, parent
        )
        optuna.storages.fail_stale_trials(study)
        study.optimize(objective, n_trials=remaining, catch=())
        tracker.log_metrics(parent, {"best_val_mae": study.best_value})
        tracker.finish(parent)
    best = dict(study.best_params)
    output.write_text(
        f"# Best {camp.config.model.kind}-model settings from `discovery tune` "
        f"({study.study_name}, validation MAE {study.best_value:.4f} eV/atom).\n"
        "# Use it from a campaign config with `include: [this file]`.\n"
        + yaml.safe_dump({"model": best}, sort_keys=True)
    )
    finished = sum(1 for t in study.trials if t.state in _DONE)
    return TuneResult(best, float(study.best_value), finished, output)
