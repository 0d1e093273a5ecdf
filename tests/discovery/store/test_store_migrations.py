"""Schema migrations: a store made by an older version opens in this one, upgraded in place
with its data kept, on a SQLite file and on a PostgreSQL server."""

from __future__ import annotations

import multiprocessing

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from discovery.store import Campaign, Candidate, Database, Prediction
from discovery.store.migrate import (
    StoreVersionError,
    alembic_config,
    current_revision,
    head_revision,
)
from discovery.store.schema import Base

BASELINE = "0001"
SCALE_INDEXES = {
    ("predictions", "ix_predictions_model_version_e_hull_mean"),
    ("candidates", "ix_candidates_campaign_formula_dedup_key"),
}


def _revision(url: str) -> str | None:
    engine = sa.create_engine(url)
    with engine.connect() as con:
        rev = current_revision(con)
    engine.dispose()
    return rev


def _indexes(url: str) -> set[tuple[str, str]]:
    engine = sa.create_engine(url)
    found = {
        (table, ix["name"])
        for table in ("predictions", "candidates")
        for ix in sa.inspect(engine).get_indexes(table)
    }
    engine.dispose()
    return found


def _at_baseline(url: str) -> None:
    """A store exactly as the version before the scale indexes left it."""
    engine = sa.create_engine(url)
    with engine.begin() as con:
        config = alembic_config()
        config.attributes["connection"] = con
        command.upgrade(config, BASELINE)
    engine.dispose()


def _fill(url: str) -> None:
    """A campaign, a candidate and its prediction, written with plain SQL as an old version
    would have (no ORM defaults from this version)."""
    engine = sa.create_engine(url)
    with engine.begin() as con:
        con.execute(
            sa.text(
                "INSERT INTO campaigns (id, name, config_yaml, status, created_at)"
                " VALUES (1, 'old', 'name: old', 'done', '2025-01-01 00:00:00+00:00')"
            )
        )
        con.execute(
            sa.text(
                "INSERT INTO candidates (id, campaign_id, uid, round_index, is_reference,"
                " structure, formula, reduced_formula, chemsys, nsites, origin, origin_detail,"
                " dedup_key, status, created_at) VALUES (7, 1, 'r0-rnd-0001', 0, false, '{}',"
                " 'Cu1 Au1', 'CuAu', 'Au-Cu', 2, 'random', '{}', 'CuAu|2|221', 'generated',"
                " '2025-01-01 00:00:00+00:00')"
            )
        )
        con.execute(
            sa.text(
                "INSERT INTO predictions (candidate_id, model_version, round_index,"
                " e_form_mean, e_form_std, e_hull_mean) VALUES (7, 'm0', 0, -0.1, 0.02, 0.03)"
            )
        )
    engine.dispose()


def _assert_kept(db: Database) -> None:
    with db.session() as s:
        assert s.get(Campaign, 1).name == "old"
        cand = s.get(Candidate, 7)
        assert (cand.uid, cand.dedup_key) == ("r0-rnd-0001", "CuAu|2|221")
        assert s.scalars(sa.select(Prediction.e_hull_mean)).all() == [0.03]


def _no_drift(db: Database) -> None:
    """The migrated schema is the one the ORM describes: no table, column or index differs."""
    with db.engine.connect() as con:
        assert compare_metadata(MigrationContext.configure(con), Base.metadata) == []


def test_a_new_store_is_created_at_head_and_matches_the_tables(store_url):
    db = Database(store_url)
    assert _revision(store_url) == head_revision()
    _no_drift(db)
    assert SCALE_INDEXES <= _indexes(store_url)
    db.dispose()


def test_a_store_at_the_baseline_is_upgraded_and_keeps_its_data(store_url):
    _at_baseline(store_url)
    _fill(store_url)
    assert _revision(store_url) == BASELINE
    assert not SCALE_INDEXES & _indexes(store_url)

    db = Database(store_url)
    assert _revision(store_url) == head_revision() != BASELINE
    assert SCALE_INDEXES <= _indexes(store_url)
    _assert_kept(db)
    _no_drift(db)
    db.dispose()


def test_a_store_made_before_migrations_is_adopted(store_url):
    # The first versions made their tables with create_all and had no graph cache yet.
    _at_baseline(store_url)
    _fill(store_url)
    engine = sa.create_engine(store_url)
    with engine.begin() as con:
        con.execute(sa.text("DROP TABLE alembic_version"))
        con.execute(sa.text("DROP TABLE graph_cache"))
    engine.dispose()
    assert _revision(store_url) is None

    db = Database(store_url)
    assert _revision(store_url) == head_revision()
    _assert_kept(db)
    _no_drift(db)  # graph_cache included
    db.dispose()


def test_a_store_from_a_newer_version_is_refused(store_url):
    Database(store_url).dispose()
    engine = sa.create_engine(store_url)
    with engine.begin() as con:
        con.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreVersionError, match="newer"):
        Database(store_url)


def test_reopening_leaves_a_store_at_head_alone(store_url):
    Database(store_url).dispose()
    Database(store_url).dispose()
    assert _revision(store_url) == head_revision()


def _open(url: str, barrier) -> None:
    barrier.wait()
    Database(url).dispose()


def test_two_processes_opening_a_new_store_at_once_both_succeed(store_url):
    # A campaign and `discovery serve` started together: the upgrade runs once, under a lock.
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_open, args=(store_url, barrier)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert _revision(store_url) == head_revision()


def test_revisions_form_one_line_and_step_down_and_up(store_url):
    from alembic.script import ScriptDirectory

    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1
    Database(store_url).dispose()
    engine = sa.create_engine(store_url)
    with engine.begin() as con:
        config = alembic_config()
        config.attributes["connection"] = con
        command.downgrade(config, BASELINE)
    engine.dispose()
    assert _revision(store_url) == BASELINE and not SCALE_INDEXES & _indexes(store_url)
    Database(store_url).dispose()
    assert SCALE_INDEXES <= _indexes(store_url)
