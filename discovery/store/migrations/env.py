"""Alembic environment of the campaign store.

`discovery.store.migrate` runs it on an open connection (passed in `config.attributes`), inside
a transaction it already holds, so that concurrent openers of one store serialise on its lock.
Run by hand (`alembic -c ... upgrade head`), it connects to `sqlalchemy.url` itself."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from discovery.store.schema import Base

config = context.config


def _run(connection) -> None:
    # Batch mode lets later revisions alter columns on SQLite, which has no ALTER COLUMN.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
