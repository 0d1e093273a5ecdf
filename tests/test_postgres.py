"""The same campaign on a real PostgreSQL server: nothing in the store assumes SQLite.

The server is conftest's `postgres_server`, a throwaway one on loopback for the session."""

from __future__ import annotations

import pytest
from conftest import cli, new_postgres_database, toy_config, write_config


@pytest.fixture
def postgres_url(postgres_server):
    return new_postgres_database(postgres_server)


def test_toy_campaign_on_postgres(postgres_url, tmp_path):
    import sqlalchemy as sa

    data = {**toy_config(), "name": "toy-on-postgres", "rounds": 2}
    data["store"] = {"url": postgres_url}
    config = write_config(tmp_path / "pg.yaml", data)
    directory = tmp_path / "run"
    result = cli("run", config, "--dir", directory)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (directory / "campaign.db").exists()  # the store really is the server

    engine = sa.create_engine(postgres_url)
    with engine.connect() as con:
        stages = con.execute(sa.text('select "index", stage from rounds order by "index"')).all()
        calcs = con.execute(sa.text("select count(*) from calculations")).scalar()
        queued = (
            con.execute(
                sa.text(
                    "select c.uid from review_queue q join candidates c on c.id = q.candidate_id"
                )
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert [tuple(r) for r in stages] == [(0, "done"), (1, "done")]
    assert calcs == 9 + 2 * data["validation_budget"]
    assert queued

    approve = cli("review", "approve", directory, queued[0], "--reviewer", "ada")
    assert approve.returncode == 0, approve.stderr
    out = tmp_path / "s.csv"
    assert cli("export", directory, "--format", "csv", "--out", out).returncode == 0
    assert queued[0] in out.read_text() and "approved" in out.read_text()
