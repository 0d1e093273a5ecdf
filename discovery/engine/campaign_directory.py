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
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

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

    def preflight(self, config: CampaignConfig) -> None:
        """Check, creating nothing, that a run of `config` can set up here: the directory can
        be created and written, the store and tracking paths can be opened, and a campaign
        already in the directory is this one. A ConfigError names every problem."""
        problems = [*config_path_problems(config, inside=self.path)]
        problem = _directory_problem(self.path, "the campaign directory")
        if problem:
            problems.insert(0, problem)
        elif self.config_file.is_file():
            problem = self._different_campaign(config)
            if problem:
                problems.append(problem)
        if len(problems) == 1:
            raise ConfigError(problems[0])
        if problems:
            lines = [f"  {line}" for problem in problems for line in problem.splitlines()]
            raise ConfigError("\n".join([f"{len(problems)} problems", *lines]))

    def _different_campaign(self, config: CampaignConfig) -> str | None:
        """Why this directory cannot take `config`: the fields that differ from its own."""
        previous = load_config(self.config_file)
        changes = _differences(_comparable(previous), _comparable(config))
        if not changes:
            return None
        lines = [f"  {path}: {old} -> {new}" for path, old, new in changes]
        return "\n".join(
            [
                f"{self.path} holds a different campaign ({previous.name}); use a new --dir or "
                f"the same config (only 'rounds' may change). Fields that differ (saved -> new):",
                *lines,
            ]
        )

    def prepare(self, config: CampaignConfig) -> None:
        """Create the directory for `config`, or check that it already holds this campaign.

        Extending a campaign by more rounds is allowed; anything else would mix two campaigns
        in one store."""
        if self.config_file.exists():
            problem = self._different_campaign(config)
            if problem:
                raise ConfigError(problem)
        self.path.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(dump_config(config))

    @contextmanager
    def setting_up(self, config: CampaignConfig) -> Iterator[None]:
        """Undo what a run's set-up created if it fails: a directory it made goes, files it
        added to an existing one go, a config it rewrote is restored. A store or tracking
        server that cannot be opened becomes a ConfigError naming it."""
        created = _first_missing(self.path)
        before = set(os.listdir(self.path)) if created is None else set()
        saved = self.config_file.read_bytes() if self.config_file.is_file() else None
        outside = [
            p
            for p in _sqlite_files(config, self)
            if not p.exists() and not p.resolve().is_relative_to(self.path.resolve())
        ]
        try:
            yield
        except BaseException as err:
            _undo(self, created, before, saved, outside)
            if isinstance(err, ConfigError) or not _is_setup_error(err):
                raise
            first = " ".join(str(err).split())[:300] or type(err).__name__
            raise ConfigError(
                f"cannot set up the campaign in {self.path}: {first} "
                f"(store {self.store_url(config)}, tracking {self.tracking_uri(config)})"
            ) from err

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


def _differences(old: object, new: object, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted field, old, new) for every leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in [*old, *(k for k in new if k not in old)]:
            name = f"{prefix}.{key}" if prefix else str(key)
            out += _differences(old.get(key), new.get(key), name)
        return out
    if old == new:
        return []
    return [(prefix or "(top level)", _short(old), _short(new))]


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _first_missing(path: Path) -> Path | None:
    """The topmost directory a `mkdir(parents=True)` of `path` would create; None if it exists."""
    path = Path(os.path.abspath(path))
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def _directory_problem(path: Path, what: str) -> str | None:
    """Why `path` cannot be created (or used) as a writable directory; None if it can."""
    path = Path(os.path.abspath(path))
    existing = path
    while not existing.exists() and not existing.is_symlink():
        existing = existing.parent
    if existing == path and not path.is_dir():
        return f"{what} {path} exists and is not a directory"
    if not existing.is_dir():
        return f"{what} {path} cannot be created: {existing} is not a directory"
    try:  # os.access says yes to root even on a read-only mount; try it (nothing is left)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        verb = "written" if existing == path else "created"
        return f"{what} {path} cannot be {verb}: writing in {existing} fails ({err.strerror})"
    return None


def _sqlite_files(config: CampaignConfig, location: CampaignDirectory) -> list[Path]:
    """The SQLite files a run opens (store, MLflow tracking)."""
    files = []
    for url in (location.store_url(config), location.tracking_uri(config)):
        path = _sqlite_path(url)
        if path is not None:
            files.append(path)
    return files


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def config_path_problems(config: CampaignConfig, inside: Path | None = None) -> list[str]:
    """What keeps the store and tracking paths of `config` from being opened, creating
    nothing; a path under `inside` (the campaign directory, made by the run) may not exist."""
    problems = []
    for field, url in (("store.url", config.store.url), ("tracking.uri", config.tracking.uri)):
        if url is None:
            continue
        problem = _url_problem(field, url, inside)
        if problem:
            problems.append(problem)
    return problems


# The tracking URI schemes MLflow opens.
TRACKING_SCHEMES = frozenset(
    ("", "file", "http", "https", "databricks", "databricks-uc", "uc", "postgresql", "mysql",
     "sqlite", "mssql")
)  # fmt: skip


def _url_problem(field: str, url: str, inside: Path | None) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    scheme = urlparse(url).scheme
    if field == "store.url" or scheme.startswith("sqlite"):
        try:
            parsed = make_url(url)
            dialect = parsed.get_dialect()
            dialect.import_dbapi()
        except (ArgumentError, NoSuchModuleError, ValueError) as err:
            return f"invalid value for '{field}': {url!r} is not a database URL ({err})"
        except ImportError as err:
            return f"invalid value for '{field}': the driver for {url!r} is not installed ({err})"
        path = _sqlite_path(url)
        if path is None:
            return None
        return _file_problem(field, url, path, inside)
    if scheme.split("+")[0] not in TRACKING_SCHEMES:
        known = ", ".join(sorted(s for s in TRACKING_SCHEMES if s))
        return f"invalid value for '{field}': unknown scheme {scheme!r} in {url!r} ({known})"
    if scheme in ("http", "https") and not urlparse(url).netloc:
        return f"invalid value for '{field}': {url!r} names no host"
    if scheme in ("", "file"):
        target = Path(urlparse(url).path if scheme == "file" else url)
        problem = _directory_problem(target, f"the tracking directory ({field})")
        return f"invalid value for '{field}': {problem}" if problem else None
    return None


def _file_problem(field: str, url: str, path: Path, inside: Path | None) -> str | None:
    path = Path(os.path.abspath(path))
    if path.exists():
        if not path.is_file():
            return f"invalid value for '{field}': {path} is not a file"
        if not os.access(path, os.R_OK | os.W_OK):
            return f"invalid value for '{field}': {path} is not writable"
        return None
    parent = path.parent
    if inside is not None and (parent == Path(os.path.abspath(inside))):
        return None  # the campaign directory: checked on its own
    if not parent.is_dir():
        return f"invalid value for '{field}': {url!r}: the directory {parent} does not exist"
    problem = _directory_problem(parent, "the directory")
    return f"invalid value for '{field}': {problem}" if problem else None


def _is_setup_error(err: BaseException) -> bool:
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(err, OSError | SQLAlchemyError | ImportError):
        return True
    try:
        from mlflow.exceptions import MlflowException
    except ImportError:  # pragma: no cover
        return False
    return isinstance(err, MlflowException)


def _undo(
    location: CampaignDirectory,
    created: Path | None,
    before: set[str],
    saved: bytes | None,
    outside: list[Path],
) -> None:
    """Remove what a failed set-up made (and only that)."""
    try:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        elif location.path.is_dir():
            for name in set(os.listdir(location.path)) - before:
                target = location.path / name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)
            if saved is not None:
                location.config_file.write_bytes(saved)
        for path in outside:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    except OSError as err:  # pragma: no cover - the original error matters more
        log.warning("could not remove what the failed set-up made: %s", err)


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
