"""MLflow tracking: one parent run per campaign, one nested run per round.

Uses `MlflowClient` with explicit run ids instead of the fluent API's global active run, so a
resumed campaign re-attaches to the runs whose ids the store remembers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings as one level of dotted keys with string values, as MLflow params take
    them."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:5000]
    return out


class Tracker:
    def __init__(self, uri: str, experiment: str, artifact_root: Path):
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None and uri.startswith(("http://", "https://")):
            # A tracking server stores artifacts where it was told to (its artifact root or
            # proxy), so every member of a team can browse them; a local path would not be.
            self.experiment_id = self.client.create_experiment(experiment)
        elif exp is None:
            # Keep artifacts inside the campaign dir; MLflow's default is ./mlruns of the cwd.
            artifact_root.mkdir(parents=True, exist_ok=True)
            self.experiment_id = self.client.create_experiment(
                experiment, artifact_location=artifact_root.resolve().as_uri()
            )
        else:
            self.experiment_id = exp.experiment_id

    def start_parent(self, run_id: str | None, name: str, params: Mapping[str, Any]) -> str:
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        run = self.client.create_run(self.experiment_id, run_name=name)
        flat = flatten(params)
        self.client.log_batch(
            run.info.run_id, params=[Param(k, v) for k, v in sorted(flat.items())]
        )
        return run.info.run_id

    def start_round(self, run_id: str | None, parent_id: str, round_index: int) -> str:
        if run_id is None:
            # A kill between creating the run and the store committing its id leaves a run
            # the store does not know: adopt it rather than show the round twice in the UI.
            run_id = self._round_run(parent_id, round_index)
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"round-{round_index}",
            tags={"mlflow.parentRunId": parent_id, "round": str(round_index)},
        )
        return run.info.run_id

    def _round_run(self, parent_id: str, round_index: int) -> str | None:
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`mlflow.parentRunId` = '{parent_id}' AND tags.round = '{round_index}'"
            ),
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        flat = flatten(params)
        self.client.log_batch(run_id, params=[Param(k, v) for k, v in sorted(flat.items())])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float | None], step: int = 0) -> None:
        now = int(time.time() * 1000)
        batch = [
            Metric(k, float(v), now, step)
            for k, v in sorted(metrics.items())
            if isinstance(v, (int, float)) and v == v  # drop None and NaN
        ]
        if batch:
            self.client.log_batch(run_id, metrics=batch)

    def log_history(self, run_id: str, history: Mapping[str, list[tuple[int, float]]]) -> None:
        """Metric series, e.g. loss per epoch: {name: [(step, value), ...]}."""
        now = int(time.time() * 1000)
        metrics = [
            Metric(name, float(value), now, step)
            for name, series in sorted(history.items())
            for step, value in series
        ]
        # MLflow takes at most 1000 metrics per batch.
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[start : start + 1000])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Tags on a run (strings, as MLflow keeps them)."""
        for key, value in tags.items():
            self.client.set_tag(run_id, key, str(value)[:5000])

    def log_artifact(self, run_id: str, path: Path, subdir: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), subdir)

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)
