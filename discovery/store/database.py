"""Engine and session factory for the campaign store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from discovery.store.migrate import upgrade_to_head


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets `discovery review` and `status` read while a campaign writes.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Database:
    """One store: an engine plus a session factory. Opening brings the schema to the head
    revision (a new store is created, an older one upgraded in place); `create=False` leaves
    the schema untouched, for readers that must not write."""

    def __init__(self, url: str, create: bool = True):
        self.url = url
        self.engine: Engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        if create:
            upgrade_to_head(self.engine)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self, *, write_lock: bool = False) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises.

        `write_lock=True` is for read-then-write work that must see and change the latest
        state, such as a review decision: on SQLite the transaction begins with
        `BEGIN IMMEDIATE`, which holds the file's write lock from the first read to the commit,
        so two such units run one after the other. (PostgreSQL takes row locks instead:
        `SELECT ... FOR UPDATE` in the unit itself.)"""
        with self._factory() as session:
            try:
                if write_lock and self.engine.dialect.name == "sqlite":
                    session.connection().exec_driver_sql("BEGIN IMMEDIATE")
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
