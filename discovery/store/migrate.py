"""Bring a campaign store to the head schema revision (Alembic), whatever it was made by.

- a new, empty database is built at head;
- a store at an older revision is upgraded;
- a store made before migrations existed (tables, no `alembic_version`) is adopted by the
  baseline revision, which creates only what is missing, and then upgraded.

Several processes may open one store at once (a campaign, `discovery review`, the web app),
so the upgrade runs under the store's write lock: PostgreSQL's advisory lock, SQLite's
`BEGIN IMMEDIATE`. The loser waits, then finds the store at head and does nothing."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
# Any constant shared by every process of this package; "discover" in ASCII.
_PG_LOCK_KEY = 0x646973636F766572


class StoreVersionError(RuntimeError):
    """The store was written by a newer version of this package."""


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest revision in discovery/store/migrations: what a current store is stamped."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migration revisions found in the package")
    return head


def current_revision(connection: Connection) -> str | None:
    """The store's revision; None for an empty database or one made before migrations."""
    # Read directly rather than through a MigrationContext, which logs at INFO on every
    # open of the store (the CLI, the web app on each request).
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Released at commit; holds off every other opener until the upgrade is visible.
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        # The write lock now, not at the first write: two openers of a new file would both
        # see it empty and both try to create the tables.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade_to_head(engine: Engine) -> None:
    """Migrate the store to the newest revision under a lock, so concurrent openers migrate
    it once; a store already at head costs one read."""
    head = head_revision()
    with engine.connect() as connection:
        # The common case, a store already at head, costs one read and takes no lock.
        if current_revision(connection) == head:
            return
        connection.rollback()
        _lock(connection)
        current = current_revision(connection)
        if current == head:
            connection.commit()
            return
        known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
        if current is not None and current not in known:
            connection.rollback()
            raise StoreVersionError(
                f"the store is at schema revision {current}, unknown to this version "
                f"(head {head}): it was written by a newer crystal-discovery"
            )
        if current is None and inspect(connection).has_table("campaigns"):
            log.info("store made before schema migrations: adopting it at the baseline")
        log.info("store schema %s -> %s", current or "empty", head)
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()
