"""User text is data, never markup: reviewer names, notes and campaign names full of rich
markup, ANSI escapes, HTML, control characters, right-to-left text and sheer length go in
through the CLI and the web API and come out, on the terminal, in logs and on the pages, as
the text they are."""

from __future__ import annotations

import io
import logging
import sqlite3

import pytest
from conftest import cli, toy_config, write_config
from fastapi.testclient import TestClient
from rich.console import Console

from discovery.frontends.safe_text import SafeRichHandler, clean, labelled, plain
from discovery.frontends.web import create_app

TOKEN = "test-token-0123456789"
AUTH = {"X-Discovery-Token": TOKEN}

# (stored text, what a terminal must show of it)
HOSTILE = [
    ("[/b] see ref [1]", "[/b] see ref [1]"),
    ("[red]eve", "[red]eve"),
    ("[link=https://evil.example]click[/link]", "[link=https://evil.example]click[/link]"),
    ("ends in a backslash \\", "ends in a backslash \\"),
    ("\\[bold]escaped?", "\\[bold]escaped?"),
    (":warning: :smile:", ":warning: :smile:"),
    ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
    ("\x1b]0;pwned\x07title", "\\x1b]0;pwned\\x07title"),
    ("\x9b2J8-bit CSI", "\\x9b2J8-bit CSI"),
    ("nul\x00bs\x08cr\rdel\x7f", "nul\\x00bs\\x08cr\\x0ddel\\x7f"),
    ('<script>alert("x")</script>', '<script>alert("x")</script>'),
    (
        "<b>bold</b> &amp; <img src=x onerror=alert(1)>",
        "<b>bold</b> &amp; <img src=x onerror=alert(1)>",
    ),
    ("שלום עולם", "שלום עולם"),
    ("abc\u202etxt.exe", "abc\\u202etxt.exe"),
]
LONG = "[/] " + "very long " * 800 + "end"


@pytest.mark.parametrize(("text", "shown"), HOSTILE)
def test_markup_and_controls_are_shown_as_text(text, shown):
    assert clean(text) == shown
    for renderable, expected in (
        (plain(text), shown),
        (labelled("note", "bold", text), f"note: {shown}"),
    ):
        console = Console(file=io.StringIO(), width=400, force_terminal=False)
        console.print(renderable)
        assert console.file.getvalue().rstrip("\n") == expected


def test_log_messages_with_user_text_are_not_markup():
    stream = io.StringIO()
    handler = SafeRichHandler(console=Console(file=stream, width=400), show_path=False)
    log = logging.getLogger("discovery.test-hostile")
    log.addHandler(handler)
    log.propagate = False
    try:
        for text, _ in HOSTILE:
            log.warning("%s approved by %s", "r1-sub-0001", text)
    finally:
        log.removeHandler(handler)
    written = stream.getvalue()
    assert "\x1b" not in written and "\x00" not in written
    for _, shown in HOSTILE[:6]:
        assert f"approved by {shown}" in written


def test_a_progress_bar_takes_its_label_as_text():
    from discovery.engine.progress import StageProgress

    stream = io.StringIO()
    progress = StageProgress(True, Console(file=stream, width=200, force_terminal=True))
    with progress.stage("references ([/b]dft)", 2) as task:
        task.advance(2)
    assert "references ([/b]dft)" in stream.getvalue()


def _queued(directory) -> list[str]:
    with sqlite3.connect(directory / "campaign.db") as con:
        return [u for (u,) in con.execute(
            "select c.uid from review_queue q join candidates c on c.id = q.candidate_id "
            "order by q.rank")]  # fmt: skip


def test_hostile_text_through_the_api_the_cli_and_the_pages(toy_copy):
    first, second = _queued(toy_copy)[:2]
    with TestClient(create_app(toy_copy, TOKEN)) as client:
        for text, _ in [*HOSTILE, (LONG, None)]:
            body = {"reviewer": text[:120], "note": text}
            r = client.post(f"/api/candidates/{first}/comment", json=body, headers=AUTH)
            assert r.status_code == 200, (text, r.text)
        r = client.post(
            f"/api/candidates/{second}/decision",
            json={"decision": "approved", "reviewer": "[red]eve", "note": "[/b] see ref [1]"},
            headers=AUTH,
        )
        assert r.status_code == 200
        # The API gives back exactly what was stored.
        hist = client.get(f"/api/candidates/{first}/history").json()
        assert [h["note"] for h in hist] == [t for t, _ in HOSTILE] + [LONG]
        # The page escapes it: no tag of ours, every character shown as text.
        page = client.get(f"/candidates/{first}").text
        assert "<script>alert" not in page and "<b>bold</b>" not in page
        assert "<img src=x" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
        assert "[/b] see ref [1]" in page and "[red]eve" in page and "שלום עולם" in page

    # A CLI write with a hostile name, then the listings every reviewer of the campaign uses.
    wrote = cli("review", "comment", toy_copy, first, "--reviewer", "[/b]ann", "--note", "[1]")
    assert wrote.returncode == 0, wrote.stderr
    assert f"{first}: comment by [/b]ann" in wrote.stdout
    listing = cli("review", "list", toy_copy)
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert "[red]eve" in listing.stdout and "[/b]ann" in listing.stdout
    shown = cli("review", "history", toy_copy, first)
    assert shown.returncode == 0, shown.stderr[-2000:]
    for out in (listing.stdout, shown.stdout):
        assert "\x1b" not in out and "\x00" not in out and "\u202e" not in out
    for _, visible in HOSTILE:
        assert visible in shown.stdout, visible
    # An error message quoting a hostile id is printed, not parsed.
    bad = cli("review", "approve", toy_copy, "[/b]nope\x1b[2J", "--reviewer", "ada")
    assert bad.returncode != 0
    assert "no candidate '[/b]nope\\x1b[2J'" in bad.stderr and "\x1b" not in bad.stderr


def test_a_hostile_campaign_name_is_printed_as_text(tmp_path):
    config = toy_config()
    config["name"] = "[/b]camp [red]x\x1b[2J"
    path = write_config(tmp_path / "hostile.yaml", config)
    result = cli("validate", path)
    assert result.returncode == 0, result.stderr
    assert "[/b]camp [red]x\\x1b[2J" in result.stdout and "\x1b" not in result.stdout
