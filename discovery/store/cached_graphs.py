"""The campaign store as a models.graph_cache.GraphCache."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from discovery.store.database import Database
from discovery.store.schema import GraphCacheEntry

log = logging.getLogger(__name__)

# Bound parameters per IN query: well under SQLite's and PostgreSQL's limits.
_CHUNK = 500


class StoreGraphCache:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        keys = list(keys)
        found: dict[str, bytes] = {}
        with self.db.session() as session:
            for start in range(0, len(keys), _CHUNK):
                rows = session.execute(
                    select(GraphCacheEntry.key, GraphCacheEntry.payload).where(
                        GraphCacheEntry.key.in_(keys[start : start + _CHUNK])
                    )
                )
                found.update({key: bytes(payload) for key, payload in rows})
        return found

    def put_many(self, entries: Mapping[str, bytes]) -> None:
        # Another process (`discovery tune` beside a run) may have added some meanwhile; the
        # cache is only an accelerator, so losing that race just drops this batch.
        new = dict(entries)
        try:
            self._insert_missing(new)
        except IntegrityError:
            log.debug("graph cache: %d entries raced with another writer; skipped", len(new))

    def _insert_missing(self, new: dict[str, bytes]) -> None:
        with self.db.session() as session:
            keys = list(new)
            for start in range(0, len(keys), _CHUNK):
                present = session.scalars(
                    select(GraphCacheEntry.key).where(
                        GraphCacheEntry.key.in_(keys[start : start + _CHUNK])
                    )
                )
                for key in present:
                    new.pop(key, None)
            session.add_all(GraphCacheEntry(key=k, payload=v) for k, v in new.items())
