"""A campaign directory: the one place that knows its file names, where its store and MLflow
tracking live, how to start one and how to open one for reading.

    runs/quickstart/
        campaign.yaml      the config the campaign runs with (a resumed run must match it)
        campaign.db        the SQLite store (unless `store.url` names another database)
        mlflow.db          the MLflow tracking store (unless `tracking.uri` names a server)
        mlartifacts/       MLflow artifacts: plots, shortlists, checkpoints per round
        checkpoints/       the ensemble of each round
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, select

from discovery.config import CampaignConfig, ConfigError, dump_config, load_config
from discovery.store import Campaign, Database
from discovery.store.migrate import upgrade_to_head

log = logging.getLogger(__name__)

CONFIG_FILE = "campaign.yaml"
STORE_FILE = "campaign.db"
TRACKING_FILE = "mlflow.db"
ARTIFACT_DIR = "mlartifacts"
CHECKPOINT_DIR = "checkpoints"


@dataclass(frozen=True)
class CampaignDirectory:
    """Paths and URLs of one campaign directory (nothing is touched until asked)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def artifact_dir(self) -> Path:
        return self.path / ARTIFACT_DIR

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    def store_url(self, config: CampaignConfig) -> str:
        """The config's `store.url`, or the SQLite file inside the directory."""
        return config.store.url or f"sqlite:///{(self.path / STORE_FILE).resolve()}"

    def tracking_uri(self, config: CampaignConfig) -> str:
        """The config's `tracking.uri`, or the MLflow SQLite file inside the directory."""
        return config.tracking.uri or f"sqlite:///{(self.path / TRACKING_FILE).resolve()}"

    def describe_store(self, config: CampaignConfig) -> str:
        """Where the store is, for people: the file name when it is the directory's own."""
        return STORE_FILE if config.store.url is None else config.store.url

    def saved_config(self) -> CampaignConfig:
        """The config this directory's campaign runs with."""
        if not self.config_file.is_file():
            raise ConfigError(f"no campaign in {self.path} (missing {CONFIG_FILE})")
        return load_config(self.config_file)

    def prepare(self, config: CampaignConfig) -> None:
        """Create the directory for `config`, or check that it already holds this campaign.

        Extending a campaign by more rounds is allowed; anything else would mix two campaigns
        in one store."""
        if self.config_file.exists():
            previous = load_config(self.config_file)
            if _comparable(previous) != _comparable(config):
                raise ConfigError(
                    f"{self.path} holds a different campaign ({previous.name}); "
                    "use a new --dir or the same config"
                )
        self.path.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(dump_config(config))

    def open(self, config: CampaignConfig | None = None, read_only: bool = True) -> OpenCampaign:
        """The campaign in this directory with its store open.

        `read_only` (status, review, export, the web app) never creates or migrates a store
        and fails if the campaign has not started; otherwise (a run) the store is created or
        upgraded and the campaign row added when missing."""
        config = config or self.saved_config()
        url = self.store_url(config)
        if read_only:
            db = self._open_existing(url, config)
        else:
            db = Database(url)
        with db.session() as session:
            cid = session.scalar(select(Campaign.id).where(Campaign.name == config.name))
            if cid is None and read_only:
                db.dispose()
                raise ConfigError(f"campaign {config.name!r} has not started in {self.path}")
            if cid is None:
                row = Campaign(name=config.name, config_yaml=dump_config(config))
                session.add(row)
                session.flush()
                cid = row.id
        return OpenCampaign(config, self, db, cid)

    def _open_existing(self, url: str, config: CampaignConfig) -> Database:
        """The store, if one exists: an SQLite file is not created by looking at it, and a
        store written by an older version is upgraded in place (its data kept) so that a
        new version's status and review read it."""
        not_started = ConfigError(f"campaign {config.name!r} has not started in {self.path}")
        if (
            url == f"sqlite:///{(self.path / STORE_FILE).resolve()}"
            and not (self.path / STORE_FILE).is_file()
        ):
            raise not_started
        db = Database(url, create=False)
        with db.engine.connect() as connection:
            has_campaigns = inspect(connection).has_table("campaigns")
        if not has_campaigns:
            db.dispose()
            raise not_started
        upgrade_to_head(db.engine)
        return db


def _comparable(config: CampaignConfig) -> dict:
    data = config.model_dump(mode="json")
    data.pop("rounds")
    return data


@dataclass
class OpenCampaign:
    """A campaign whose store is open: what status, review, export and the web app read."""

    config: CampaignConfig
    location: CampaignDirectory
    db: Database
    campaign_id: int

    @property
    def directory(self) -> Path:
        return self.location.path

    @property
    def fidelity(self) -> str:
        """The first rung's: the fidelity the model learns from and the screen ranks by."""
        return self.config.simulator.fidelity

    @property
    def fidelities(self) -> list[str]:
        """Every rung's fidelity, cheapest first."""
        return [sim.fidelity for sim in self.config.ladder]

    @property
    def checkpoint_dir(self) -> Path:
        return self.location.checkpoint_dir


def open_campaign(directory: str | Path) -> OpenCampaign:
    """Open the campaign in `directory` for reading."""
    return CampaignDirectory(Path(directory)).open()
