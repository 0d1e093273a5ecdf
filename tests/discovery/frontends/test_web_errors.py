"""Refused web requests stay small and change nothing: a 5 MB comment is a short 422, and any
generated payload to the write API gets a 4xx and leaves the store as it was."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from conftest import toy_config
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from discovery.config import parse_config
from discovery.engine.campaign_directory import STORE_FILE, CampaignDirectory
from discovery.frontends.web import create_app

TOKEN = "test-token-0123456789"
AUTH = {"X-Discovery-Token": TOKEN}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    location = CampaignDirectory(tmp_path_factory.mktemp("web") / "camp")
    cfg = parse_config(toy_config())
    location.prepare(cfg)
    location.open(cfg, read_only=False).db.dispose()
    with TestClient(create_app(location.path, TOKEN)) as c:
        c.directory = location.path
        yield c


def store_digest(directory: Path) -> str:
    import sqlite3

    with sqlite3.connect(directory / STORE_FILE) as con:
        rows = [
            con.execute(f"select * from {table} order by id").fetchall()
            for table in ("review_decisions", "review_queue", "candidates")
        ]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_a_huge_comment_is_refused_without_echoing_it(client):
    note = "x" * 5_000_000
    response = client.post(
        "/api/candidates/r0-sub-0001/comment", json={"reviewer": "ana", "note": note}, headers=AUTH
    )
    assert response.status_code == 422
    assert len(response.content) < 2_000  # was over 5 MB
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "note"]
    assert (
        error["input"].startswith("x" * 200) and "truncated: 5000000 characters" in (error["input"])
    )


def test_a_short_bad_input_is_echoed_as_it_was(client):
    response = client.post(
        "/api/candidates/x/decision", json={"decision": "maybe", "reviewer": "ana"}, headers=AUTH
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["input"] == "maybe"


JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=30),
        st.builds(lambda n: "y" * n, st.integers(0, 20_000)),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=12,
)
PAYLOADS = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"reviewer": JSON, "note": JSON}, optional={"decision": JSON, "uids": JSON}
    ),
)


@settings(
    max_examples=int(os.environ.get("HYPOTHESIS_WEB_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(
        ["/api/candidates/{uid}/comment", "/api/candidates/{uid}/decision", "/api/decisions"]
    ),
    uid=st.text(alphabet="abcr0123456789-_", min_size=1, max_size=20),
    payload=PAYLOADS,
    token=st.sampled_from([AUTH, {}, {"X-Discovery-Token": "wrong"}]),
)
def test_any_payload_gets_a_small_4xx_and_changes_nothing(client, path, uid, payload, token):
    before = store_digest(client.directory)
    response = client.post(path.format(uid=uid), json=payload, headers=token)
    assert 400 <= response.status_code < 500, response.text[:500]
    assert len(response.content) < 5_000, response.text[:500]
    assert response.json()["detail"]
    assert store_digest(client.directory) == before
