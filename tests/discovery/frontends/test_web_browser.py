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


@pytest.fixture
def server(toy_copy, tmp_path):
    """`discovery serve` on a free loopback port, with the token it generates and prints."""
    _require_chromium()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DISCOVERY_TOKEN"}
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "discovery.frontends.cli",
                "serve",
                str(toy_copy),
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**env, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if requests.get(url + "/", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        output = log_path.read_text()
        token = re.search(r"review token \(needed to approve, reject, comment\): (\S+)", output)
        assert token, output
        assert f"http://127.0.0.1:{port}" in output  # loopback unless told otherwise
        yield {"url": url, "token": token.group(1), "dir": toy_copy}
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


def test_review_in_a_real_browser(server, browser):
    from selenium.webdriver.common.by import By

    base, token = server["url"], server["token"]
    browser.get(base + "/")
    _wait(browser, lambda d: len(_uids(d)) > 5, "the candidate table")
    browser.save_screenshot(str(ARTIFACTS / "table.png"))

    # sort by formula, then the other way round
    browser.find_element(By.CSS_SELECTOR, 'a.sort[data-column="formula"]').click()
    _wait(browser, lambda d: "sort=formula" in d.current_url, "sorting by formula")
    assert _column(browser, 3) == sorted(_column(browser, 3))
    browser.find_element(By.CSS_SELECTOR, 'a.sort[data-column="formula"]').click()
    _wait(browser, lambda d: "order=desc" in d.current_url, "descending order")
    assert _column(browser, 3) == sorted(_column(browser, 3), reverse=True)

    # filter to the pending queue and open its first candidate
    browser.get(base + "/?review=pending")
    pending = _uids(browser)
    assert len(pending) >= 3
    uid = pending[0]
    browser.find_element(By.LINK_TEXT, uid).click()
    _wait(browser, lambda d: _plot_rendered(d, "structure-view", "gl"), "the 3D structure view")
    _wait(browser, lambda d: _plot_rendered(d, "phase-diagram", "svg"), "the phase diagram")
    _wait(browser, lambda d: _plot_rendered(d, "energy-plot", "svg"), "the energy plot")
    traces = browser.execute_script(
        "return document.getElementById('phase-diagram').data.map(t => t.name)"
    )
    assert "this candidate" in traces
    assert browser.find_element(By.ID, "review-status").text == "pending"
    browser.save_screenshot(str(ARTIFACTS / "candidate.png"))

    # without the token the app refuses, and nothing changes
    browser.find_element(By.ID, "reviewer").send_keys("ada")
    browser.find_element(By.CSS_SELECTOR, "#decide textarea").send_keys("<b>looks</b> right")
    browser.find_element(By.ID, "approve").click()
    msg = browser.find_element(By.CSS_SELECTOR, "#decide .msg")
    _wait(browser, lambda d: msg.text.startswith("401"), "the refusal without a token")
    assert browser.find_element(By.ID, "review-status").text == "pending"

    # with the token printed by `discovery serve`
    field = browser.find_element(By.ID, "token")
    field.send_keys(token)
    browser.find_element(By.ID, "approve").click()
    _wait(
        browser,
        lambda d: d.find_element(By.ID, "review-status").text == "approved",
        "the approved status",
    )
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
    rest = pending[2:]
    for u in rest:
        browser.find_element(By.CSS_SELECTOR, f'input.pick[value="{u}"]').click()
    assert browser.find_element(By.ID, "bulk-count").text == str(len(rest))
    browser.find_element(By.CSS_SELECTOR, 'button[data-decision="rejected"]').click()
    for u in rest:
        _wait(
            browser,
            lambda d, u=u: (
                d.find_element(By.CSS_SELECTOR, f'tr[data-uid="{u}"] td.review').text == "rejected"
            ),
            f"bulk rejection of {u}",
        )

    # the campaign page with its plots
    browser.get(base + "/campaign")
    for plot in ("rounds-plot", "discoveries-plot", "model-plot"):
        _wait(browser, lambda d, p=plot: _plot_rendered(d, p, "svg"), plot)
    browser.save_screenshot(str(ARTIFACTS / "campaign.png"))
