"""The review app in a real headless Chromium (Debian's chromium + chromedriver) against a real
`discovery serve` process: table, sorting, a candidate's 3D view and phase diagram, approving
with the token, and the decision in the store and in `discovery review list`. Screenshots go
to test-artifacts/browser/ (git-ignored)."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import REPO, cli

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = REPO / "test-artifacts" / "browser"
WAIT_S = 60  # generous: a loaded 2-core machine renders WebGL in software


def _require_chromium() -> None:
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    message = (
        "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{message}; .ci/run installs them")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TOKEN_LINE = re.compile(r"review token \(needed to approve, reject, comment\): (\S+)")


def _start_server(directory: Path, log_path: Path) -> tuple[subprocess.Popen, str, str] | None:
    """`discovery serve` on a free port: (process, url, token) once it answers, or None when
    the port was taken meanwhile (on a shared machine another test may grab it between
    `_free_port` and the bind). Ready means *this* server answers: it accepts the token it
    printed (a 404 for an unknown candidate, not the 401/403 of some other server)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DISCOVERY_TOKEN"}
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "discovery.frontends.cli", "serve", str(directory),
             "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**env, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        output = log_path.read_text()
        if proc.poll() is not None:
            if "address already in use" in output.lower():
                return None
            pytest.fail(f"`discovery serve` exited:\n{output}")
        token = TOKEN_LINE.search(output)
        if token:
            try:
                probe = requests.post(
                    f"{url}/api/candidates/no-such-candidate/comment",
                    json={"reviewer": "probe", "note": "probe"},
                    headers={"X-Discovery-Token": token.group(1)},
                    timeout=5,
                )
                if probe.status_code == 404:
                    assert f"http://127.0.0.1:{port}" in output  # loopback unless told otherwise
                    return proc, url, token.group(1)
            except requests.ConnectionError:
                pass
        if time.monotonic() > deadline:
            proc.terminate()
            pytest.fail(f"`discovery serve` did not answer:\n{output}")
        time.sleep(0.5)


@pytest.fixture
def server(toy_copy, tmp_path):
    """`discovery serve` on a free loopback port, with the token it generates and prints."""
    _require_chromium()
    for attempt in range(3):
        started = _start_server(toy_copy, tmp_path / f"serve-{attempt}.log")
        if started is not None:
            break
    else:
        pytest.fail("three free ports were taken before `discovery serve` could bind them")
    proc, url, token = started
    try:
        yield {"url": url, "token": token, "dir": toy_copy}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def browser():
    _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--window-size=1400,1000",
        # WebGL (the 3D view) in software; newer Chromium only does that when asked to
        "--enable-unsafe-swiftshader",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _wait(driver, condition, what: str):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # a decision reloads the page: elements vanish and come back while we poll
    ignored = (NoSuchElementException, StaleElementReferenceException)
    wait = WebDriverWait(driver, WAIT_S, ignored_exceptions=ignored)
    return wait.until(condition, message=f"timed out waiting for {what}")


def _loaded(driver) -> bool:
    return driver.execute_script("return document.readyState") == "complete"


def _navigate(driver, action, what: str) -> None:
    """Do `action` (a click on a link, or one whose script reloads the page after a fetch),
    then wait for the new page to be loaded in full, its scripts run. Without this a check
    that the new page has begun (its URL, an element near its top) lets the test read a
    page that is still being parsed: elements further down are missing or half there."""
    from selenium.webdriver.support import expected_conditions as ec

    old = driver.find_element("tag name", "html")
    action()
    _wait(driver, ec.staleness_of(old), f"{what} (the old page to go)")
    _wait(driver, _loaded, f"{what} (the new page to load)")


def _uids(driver) -> list[str]:
    rows = driver.find_elements("css selector", "#candidates tbody tr[data-uid]")
    return [r.get_attribute("data-uid") for r in rows]


def _column(driver, n: int) -> list[str]:
    cells = driver.find_elements("css selector", f"#candidates tbody td:nth-child({n})")
    return [c.text for c in cells]


def _plot_rendered(driver, element_id: str, kind: str) -> bool:
    """plotly has drawn into the div: its class is set and it holds an SVG (2D) or a WebGL
    canvas (3D scenes)."""
    return driver.execute_script(
        """
        const el = document.getElementById(arguments[0]);
        if (!el || !el.classList.contains('js-plotly-plot')) return false;
        if (arguments[1] === 'gl') {
          const c = el.querySelector('.gl-container canvas, canvas');
          return !!c && c.width > 0 && c.height > 0;
        }
        return el.querySelectorAll('svg.main-svg g.trace').length > 0;
        """,
        element_id,
        kind,
    )


def _remembered(driver) -> tuple[str | None, str | None]:
    """The reviewer name and token this browser keeps for the next pages."""
    return tuple(
        driver.execute_script("return localStorage.getItem(arguments[0])", f"discovery.{key}")
        for key in ("reviewer", "token")
    )


def _fields(driver) -> tuple[str, str]:
    return tuple(
        driver.find_element("id", key).get_attribute("value") for key in ("reviewer", "token")
    )


def test_review_in_a_real_browser(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, token = server["url"], server["token"]
    browser.get(base + "/")
    _wait(browser, lambda d: len(_uids(d)) > 5, "the candidate table")
    browser.save_screenshot(str(ARTIFACTS / "table.png"))

    # sort by formula, then the other way round
    n_rows = len(_uids(browser))

    def sort_by_formula():
        browser.find_element(By.CSS_SELECTOR, 'a.sort[data-column="formula"]').click()

    _navigate(browser, sort_by_formula, "sorting by formula")
    assert "sort=formula" in browser.current_url and "order=asc" in browser.current_url
    assert len(_uids(browser)) == n_rows
    assert _column(browser, 3) == sorted(_column(browser, 3))
    _navigate(browser, sort_by_formula, "descending order")
    assert "order=desc" in browser.current_url
    assert len(_uids(browser)) == n_rows
    assert _column(browser, 3) == sorted(_column(browser, 3), reverse=True)

    # filter to the pending queue and open its first candidate
    browser.get(base + "/?review=pending")
    pending = _uids(browser)
    assert len(pending) >= 3
    uid = pending[0]
    _navigate(browser, browser.find_element(By.LINK_TEXT, uid).click, "the candidate page")
    _wait(browser, lambda d: _plot_rendered(d, "structure-view", "gl"), "the 3D structure view")
    _wait(browser, lambda d: _plot_rendered(d, "phase-diagram", "svg"), "the phase diagram")
    _wait(browser, lambda d: _plot_rendered(d, "energy-plot", "svg"), "the energy plot")
    traces = browser.execute_script(
        "return document.getElementById('phase-diagram').data.map(t => t.name)"
    )
    assert "this candidate" in traces
    assert browser.find_element(By.ID, "review-status").text == "pending"
    browser.save_screenshot(str(ARTIFACTS / "candidate.png"))

    # without the token the app refuses, and nothing changes. TAB leaves each field, which
    # fires its "change" event: that is when the page keeps the value for the next pages.
    browser.find_element(By.ID, "reviewer").send_keys("ada", Keys.TAB)
    browser.find_element(By.CSS_SELECTOR, "#decide textarea").send_keys("<b>looks</b> right")
    browser.find_element(By.ID, "approve").click()
    msg = browser.find_element(By.CSS_SELECTOR, "#decide .msg")
    _wait(browser, lambda d: msg.text.startswith("401"), "the refusal without a token")
    assert browser.find_element(By.ID, "review-status").text == "pending"

    # with the token printed by `discovery serve`
    browser.find_element(By.ID, "token").send_keys(token, Keys.TAB)
    _wait(browser, lambda d: _remembered(d) == ("ada", token), "the name and token kept")
    _navigate(browser, browser.find_element(By.ID, "approve").click, "the approval")
    assert browser.find_element(By.ID, "review-status").text == "approved"
    history = browser.find_element(By.ID, "history").text
    assert "approved by ada" in history and "<b>looks</b> right" in history  # shown as text
    browser.save_screenshot(str(ARTIFACTS / "candidate-approved.png"))

    # the store and the CLI see it at once
    with sqlite3.connect(server["dir"] / "campaign.db") as con:
        status, reviewer = con.execute(
            "select q.status, d.reviewer from review_queue q "
            "join candidates c on c.id = q.candidate_id "
            "join review_decisions d on d.candidate_id = c.id where c.uid = ?",
            (uid,),
        ).fetchone()
    assert (status, reviewer) == ("approved", "ada")
    listing = cli("review", "list", server["dir"], "--status", "approved")
    assert listing.returncode == 0 and uid in listing.stdout

    # a CLI decision shows on the next page load, and a bulk rejection from the table
    other = pending[1]
    assert cli("review", "reject", server["dir"], other, "--reviewer", "bob").returncode == 0
    browser.get(base + "/?review=queued")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-uid="{other}"] td.review')
    assert row.text == "rejected"
    # the new page filled in the kept name and token
    assert _fields(browser) == ("ada", token)
    rest = pending[2:]
    for u in rest:
        browser.find_element(By.CSS_SELECTOR, f'input.pick[value="{u}"]').click()
    assert browser.find_element(By.ID, "bulk-count").text == str(len(rest))
    reject = browser.find_element(By.CSS_SELECTOR, 'button[data-decision="rejected"]')
    _navigate(browser, reject.click, "the bulk rejection")
    for u in rest:
        cell = browser.find_element(By.CSS_SELECTOR, f'tr[data-uid="{u}"] td.review')
        assert cell.text == "rejected", u

    # the campaign page with its plots
    browser.get(base + "/campaign")
    for plot in ("rounds-plot", "discoveries-plot", "model-plot"):
        _wait(browser, lambda d, p=plot: _plot_rendered(d, p, "svg"), plot)
    browser.save_screenshot(str(ARTIFACTS / "campaign.png"))
