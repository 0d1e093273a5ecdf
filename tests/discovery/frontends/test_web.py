"""The review web app's API and pages on a real toy campaign: the token, bad ids, malformed
bodies, path traversal, escaping, and that the app and `discovery review` see each other's
changes at once (they share the store; the server keeps no state of its own)."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sqlite3
import zipfile
from pathlib import Path

import ase.io
import plotly
import pytest
from conftest import cli
from fastapi.testclient import TestClient

from discovery.engine.shortlist import COLUMNS
from discovery.frontends.web import create_app

TOKEN = "test-token-0123456789"
AUTH = {"X-Discovery-Token": TOKEN}


def _db(directory: Path) -> sqlite3.Connection:
    return sqlite3.connect(directory / "campaign.db")


def _queued(directory: Path) -> list[str]:
    with _db(directory) as con:
        return [u for (u,) in con.execute(
            "select c.uid from review_queue q join candidates c on c.id = q.candidate_id "
            "order by q.rank")]  # fmt: skip


def _snapshot(directory: Path) -> tuple:
    with _db(directory) as con:
        return (
            con.execute("select * from review_decisions order by id").fetchall(),
            con.execute("select * from review_queue order by id").fetchall(),
        )


@pytest.fixture
def client(toy_copy):
    """An app on a private copy of the toy campaign, for tests that write."""
    with TestClient(create_app(toy_copy, TOKEN)) as c:
        c.directory = toy_copy
        yield c


@pytest.fixture(scope="module")
def reader(toy_campaign, tmp_path_factory):
    """One app for the tests that only read, on a copy with a symlink that leads outside."""
    directory = tmp_path_factory.mktemp("web") / "toy"
    shutil.copytree(toy_campaign, directory)
    outside = directory.parent / "outside.png"
    outside.write_bytes(b"\x89PNG secret")
    (directory / "link-out.png").symlink_to(outside)
    with TestClient(create_app(directory, TOKEN)) as c:
        c.directory = directory
        yield c


def test_pages_render_and_load_scripts_only_from_the_app(reader):
    uid = _queued(reader.directory)[0]
    for url in ("/", "/campaign", f"/candidates/{uid}"):
        page = reader.get(url)
        assert page.status_code == 200, url
        assert "text/html" in page.headers["content-type"]
        assert "script-src 'self'" in page.headers["content-security-policy"]
        sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page.text)
        assert sources and all(s.startswith("/") for s in sources), sources
        assert "https://" not in page.text.replace("http://127.0.0.1:5000", "")
    served = reader.get("/vendor/plotly.min.js")
    assert served.status_code == 200
    bundled = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert served.content == bundled.read_bytes()


def test_candidate_page_shows_structure_phase_diagram_and_provenance(reader):
    uid = _queued(reader.directory)[0]
    page = reader.get(f"/candidates/{uid}").text
    for element in ('id="structure-view"', 'id="phase-diagram"', 'id="energy-plot"'):
        assert element in page
    figure = re.search(r'id="structure-view" class="plot" data-figure="([^"]+)"', page).group(1)
    data = json.loads(figure.replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&"))
    assert {t["type"] for t in data["data"]} == {"scatter3d"}
    assert {"unit cell", "bonds"} <= {t["name"] for t in data["data"]}
    assert "#/experiments/" in page and "/runs/" in page  # the MLflow run link
    cif = reader.get(f"/candidates/{uid}/structure.cif?kind=relaxed")
    assert cif.status_code == 200 and "_cell_length_a" in cif.text
    assert "attachment" in cif.headers["content-disposition"]


def test_table_sorts_and_filters(reader):
    rows = reader.get("/api/candidates", params={"sort": "formula", "order": "desc"}).json()
    formulas = [r["formula"] for r in rows]
    assert formulas == sorted(formulas, reverse=True) and len(rows) > 10
    pending = reader.get("/api/candidates", params={"review": "pending"}).json()
    assert pending and {r["review"] for r in pending} == {"pending"}
    low = reader.get("/api/candidates", params={"max_e_above_hull": "0.01"}).json()
    assert low and all(r["e_above_hull"] <= 0.01 for r in low)
    by_round = reader.get("/", params={"round": "1", "sort": "e_hull_pred"}).text
    assert "r0-" not in re.sub(r"<select.*?</select>", "", by_round, flags=re.S)
    assert reader.get("/", params={"round": "one"}).status_code == 422


def test_writes_need_the_token(client):
    uid = _queued(client.directory)[0]
    before = _snapshot(client.directory)
    body = {"decision": "approved", "reviewer": "ada"}
    assert client.post(f"/api/candidates/{uid}/decision", json=body).status_code == 401
    wrong = {"X-Discovery-Token": "nope"}
    assert (
        client.post(f"/api/candidates/{uid}/decision", json=body, headers=wrong).status_code == 403
    )
    bulk = {"uids": [uid], **body}
    assert client.post("/api/decisions", json=bulk).status_code == 401
    note = {"reviewer": "ada", "note": "hi"}
    assert client.post(f"/api/candidates/{uid}/comment", json=note).status_code == 401
    assert _snapshot(client.directory) == before
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert (
        client.post(f"/api/candidates/{uid}/decision", json=body, headers=bearer).status_code == 200
    )


def test_unknown_ids_and_malformed_bodies_change_nothing(client):
    uid = _queued(client.directory)[0]
    before = _snapshot(client.directory)
    ok = {"decision": "approved", "reviewer": "ada"}
    unknown = client.post("/api/candidates/r9-xxx-0000/decision", json=ok, headers=AUTH)
    assert unknown.status_code == 404
    bulk = client.post("/api/decisions", json={"uids": [uid, "r9-xxx-0000"], **ok}, headers=AUTH)
    assert bulk.status_code == 404  # all or none: the known id was not approved either
    assert client.post("/api/candidates/nope/comment", json={"reviewer": "a", "note": "x"},
                       headers=AUTH).status_code == 404  # fmt: skip
    assert client.get("/candidates/r9-xxx-0000").status_code == 404
    assert client.get("/api/candidates/r9-xxx-0000/history").status_code == 404
    malformed = [
        {"reviewer": "ada"},
        {"decision": "maybe", "reviewer": "ada"},
        {"decision": "approved", "reviewer": "   "},
        {"decision": "approved", "reviewer": "ada", "extra": 1},
        {"decision": "approved", "reviewer": ["ada"]},
    ]
    for body in malformed:
        r = client.post(f"/api/candidates/{uid}/decision", json=body, headers=AUTH)
        assert r.status_code == 422, body
    raw = client.post(f"/api/candidates/{uid}/decision", content=b"{not json",
                      headers={**AUTH, "Content-Type": "application/json"})  # fmt: skip
    assert raw.status_code == 422
    assert client.post("/api/decisions", json={"uids": [], **ok}, headers=AUTH).status_code == 422
    empty_note = client.post(f"/api/candidates/{uid}/comment", json={"reviewer": "a", "note": " "},
                             headers=AUTH)  # fmt: skip
    assert empty_note.status_code == 422
    with _db(client.directory) as con:
        ref = con.execute("select uid from candidates where is_reference limit 1").fetchone()[0]
    assert client.post(f"/api/candidates/{ref}/decision", json=ok, headers=AUTH).status_code == 409
    assert _snapshot(client.directory) == before


def test_notes_and_names_are_shown_escaped(client):
    uid = _queued(client.directory)[0]
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    r = client.post(f"/api/candidates/{uid}/comment",
                    json={"reviewer": "<b>eve</b>", "note": evil}, headers=AUTH)  # fmt: skip
    assert r.status_code == 200
    page = client.get(f"/candidates/{uid}").text
    assert evil not in page and "<b>eve</b>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&lt;b&gt;eve&lt;/b&gt;" in page
    # the comment changed no status
    assert client.get("/api/candidates", params={"review": "pending"}).json()


@pytest.mark.parametrize(
    "path",
    [
        "/files/../campaign.yaml",
        "/files/..%2f..%2f..%2fetc%2fpasswd",
        "/files/%2fetc%2fpasswd",
        "/files//etc/passwd",
        "/files/mlartifacts/..%2f..%2f..%2fetc%2fhostname",
        "/files/campaign.yaml",
        "/files/campaign.db",
        "/files/checkpoints/r0.pt",
        "/files/link-out.png",
        "/files/nothing.png",
    ],
)
def test_files_cannot_be_read_outside_the_campaign_or_beyond_artifacts(reader, path):
    r = reader.get(path)
    assert r.status_code in (404, 422), (path, r.status_code)
    assert b"secret" not in r.content and b"root:" not in r.content


def test_run_artifacts_are_served(reader):
    page = reader.get("/campaign").text
    parity = re.findall(r'src="(/files/mlartifacts/[^"]+/parity\.png)"', page)
    assert parity
    r = reader.get(parity[0])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"


def test_export_downloads_carry_provenance(client):
    uids = _queued(client.directory)
    assert client.get("/export", params={"format": "../../etc/passwd"}).status_code == 422
    assert client.get("/export", params={"format": "csv", "status": "x"}).status_code == 422
    rows = list(csv.DictReader(io.StringIO(client.get("/export?format=csv").text)))
    assert [r["id"] for r in rows] == uids and tuple(rows[0]) == COLUMNS
    assert all(r["campaign"] and len(r["config_sha256"]) == 64 and r["mlflow_run_id"] for r in rows)
    frames = ase.io.read(io.StringIO(client.get("/export?format=extxyz").text), ":", "extxyz")
    assert [f.info["id"] for f in frames] == uids
    assert frames[0].info["simulator"] == "emt" and frames[0].cell.volume > 0
    with zipfile.ZipFile(io.BytesIO(client.get("/export?format=cif").content)) as zf:
        assert "manifest.csv" in zf.namelist() and len(zf.namelist()) == len(uids) + 1
    client.post(f"/api/candidates/{uids[0]}/decision",
                json={"decision": "approved", "reviewer": "ada"}, headers=AUTH)  # fmt: skip
    approved = client.get("/export", params={"format": "json", "status": "approved"}).json()
    assert [r["id"] for r in approved] == [uids[0]] and approved[0]["reviewer"] == "ada"


def test_the_app_and_the_cli_see_each_others_changes_at_once(client):
    first, second, third = _queued(client.directory)[:3]
    r = client.post(f"/api/candidates/{first}/decision",
                    json={"decision": "approved", "reviewer": "ada", "note": "web"},
                    headers=AUTH)  # fmt: skip
    assert r.status_code == 200 and r.json()["decision"] == "approved"
    listing = cli("review", "list", client.directory, "--status", "approved")
    assert listing.returncode == 0 and first in listing.stdout
    # the other way round, while the same app keeps running
    assert (
        cli("review", "reject", client.directory, second, third, "--reviewer", "bob").returncode
        == 0
    )
    assert cli("review", "comment", client.directory, first, "--reviewer", "cy",
               "--note", "from the CLI").returncode == 0  # fmt: skip
    states = {r["uid"]: r["review"] for r in client.get("/api/candidates").json()}
    assert states[first] == "approved" and states[second] == states[third] == "rejected"
    hist = client.get(f"/api/candidates/{first}/history").json()
    assert [(h["decision"], h["reviewer"]) for h in hist] == [
        ("approved", "ada"),
        ("comment", "cy"),
    ]
    assert "from the CLI" in client.get(f"/candidates/{first}").text
    shown = cli("review", "history", client.directory, first)
    assert shown.returncode == 0 and "approved" in shown.stdout and "comment" in shown.stdout


def test_bulk_decisions_through_the_api(client):
    uids = _queued(client.directory)[:3]
    body = {"uids": uids, "decision": "rejected", "reviewer": "ada", "note": "dups"}
    r = client.post("/api/decisions", headers=AUTH, json=body)
    assert r.status_code == 200 and [d["candidate"] for d in r.json()] == uids
    with _db(client.directory) as con:
        n = con.execute("select count(*) from review_decisions where note = 'dups'").fetchone()[0]
    assert n == 3


def test_cli_bulk_is_all_or_none_and_export_filters(toy_copy, tmp_path):
    uids = _queued(toy_copy)
    bad = cli("review", "approve", toy_copy, uids[0], "r9-xxx-0000", "--reviewer", "ada")
    assert bad.returncode != 0 and "no candidate" in bad.stderr
    assert _snapshot(toy_copy)[0] == []
    assert cli("review", "approve", toy_copy, *uids[:2], "--reviewer", "ada").returncode == 0
    out = tmp_path / "approved.extxyz"
    result = cli("export", toy_copy, "--format", "extxyz", "--status", "approved", "--out", out)
    assert result.returncode == 0, result.stderr
    frames = ase.io.read(out, ":", "extxyz")
    assert sorted(f.info["id"] for f in frames) == sorted(uids[:2])
    assert all(f.info["review_status"] == "approved" and f.info["config_sha256"] for f in frames)


def test_cli_export_refuses_to_overwrite_and_counts_right(toy_copy, tmp_path):
    uid = _queued(toy_copy)[0]
    assert cli("review", "approve", toy_copy, uid, "--reviewer", "ada").returncode == 0
    out = tmp_path / "approved.csv"
    out.write_text("precious")
    refused = cli("export", toy_copy, "--status", "approved", "--out", out)
    assert refused.returncode != 0 and "--force" in refused.stderr
    assert out.read_text() == "precious"
    forced = cli("export", toy_copy, "--status", "approved", "--out", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert f"wrote 1 candidate to {out}" in forced.stdout
    assert [r["id"] for r in csv.DictReader(out.open())] == [uid]


def test_cif_downloads_carry_the_listed_space_group(reader):
    from pymatgen.io.cif import CifParser

    def number(cif: str) -> int:
        (data,) = CifParser(io.StringIO(cif)).as_dict().values()
        return int(data.get("_symmetry_Int_Tables_number") or data["_space_group_IT_number"])

    rows = reader.get("/export", params={"format": "json"}).json()
    assert rows and any(r["spacegroup"] not in (None, 1) for r in rows)
    with zipfile.ZipFile(io.BytesIO(reader.get("/export", params={"format": "cif"}).content)) as zf:
        for row in rows:
            cif = zf.read(f"{row['id']}_{row['reduced_formula']}.cif").decode()
            assert number(cif) == (row["spacegroup"] or 1), row["id"]
            one = reader.get(f"/candidates/{row['id']}/structure.cif").text
            assert number(one) == (row["spacegroup"] or 1), row["id"]
