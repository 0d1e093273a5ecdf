"""A campaign killed with SIGKILL mid-round resumes without redoing or duplicating work."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from conftest import REPO, TOY, cli, toy_config


def _query(db, sql):
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute(sql).fetchall()
    except sqlite3.OperationalError:  # not created yet, or tables not there yet
        return None


def _kill_mid_round(directory, round_index: int, min_calcs: int, timeout: float = 300):
    proc = subprocess.Popen(
        [sys.executable, "-m", "discovery.cli", "run", str(TOY), "--dir", str(directory)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = directory / "campaign.db"
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            rows = _query(
                db, f"select count(*) from calculations where round_index = {round_index}"
            )
            if rows and rows[0][0] >= min_calcs:
                break
            if proc.poll() is not None:
                raise AssertionError("the campaign finished before it could be killed")
            time.sleep(0.05)
        else:
            raise AssertionError("timed out waiting for the kill point")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_mid_round_then_resume(tmp_path, toy_campaign):
    directory = tmp_path / "killed"
    _kill_mid_round(directory, round_index=1, min_calcs=2)
    stages = _query(directory / "campaign.db", 'select "index", stage from rounds')
    assert dict(stages).get(1) != "done", "killed too late to test a resume mid-round"
    before = _query(
        directory / "campaign.db", "select id, candidate_id, created_at from calculations"
    )

    result = cli("run", TOY, "--dir", directory)
    assert result.returncode == 0, result.stderr[-3000:]

    db = directory / "campaign.db"
    after = _query(db, "select id, candidate_id, created_at from calculations")
    # nothing committed before the kill was redone or rewritten
    assert set(before) <= set(after)
    dupes = _query(
        db,
        "select candidate_id, fidelity, count(*) from calculations "
        "group by candidate_id, fidelity having count(*) > 1",
    )
    assert dupes == []
    rounds = _query(db, 'select "index", stage from rounds order by "index"')
    baseline = _query(
        toy_campaign / "campaign.db", 'select "index", stage from rounds order by "index"'
    )
    assert rounds == baseline == [(r, "done") for r in range(toy_config()["rounds"])]
    # same validation work per round as the uninterrupted run
    per_round = "select round_index, count(*) from calculations group by round_index"
    assert _query(db, per_round) == _query(toy_campaign / "campaign.db", per_round)
    # and the same candidates were generated (generation is seeded per round)
    gen = "select uid, reduced_formula from candidates order by uid"
    assert _query(db, gen) == _query(toy_campaign / "campaign.db", gen)
