"""Links from the review app into the MLflow UI (`discovery ui` serves it)."""

from __future__ import annotations

import logging

from discovery.engine.campaign_directory import OpenCampaign

log = logging.getLogger(__name__)

DEFAULT_MLFLOW_URL = "http://127.0.0.1:5000"


class MlflowLinks:
    """Run URLs in the MLflow UI. The experiment id is looked up once: a campaign's
    experiment never changes, unlike everything else the app shows."""

    def __init__(self, camp: OpenCampaign, base_url: str | None = None):
        self.base_url = (base_url or DEFAULT_MLFLOW_URL).rstrip("/")
        self._camp = camp
        self._experiment_id: str | None = None

    def experiment_id(self) -> str | None:
        if self._experiment_id is None:
            try:
                from mlflow.tracking import MlflowClient

                cfg = self._camp.config
                client = MlflowClient(tracking_uri=self._camp.location.tracking_uri(cfg))
                exp = client.get_experiment_by_name(cfg.tracking.experiment or cfg.name)
                self._experiment_id = exp.experiment_id if exp else None
            except Exception as err:  # the page still shows the run id without a link
                log.warning("no MLflow experiment id: %s", err)
        return self._experiment_id

    def run(self, run_id: str | None) -> str | None:
        exp = self.experiment_id() if run_id else None
        if not run_id or exp is None:
            return None
        return f"{self.base_url}/#/experiments/{exp}/runs/{run_id}"
