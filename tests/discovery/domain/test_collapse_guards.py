"""Collapse guards: the rules, and their numbers on a real (toy) campaign."""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import cli
from pymatgen.core import Composition

from discovery.domain.collapse_guards import concentrated, diversity, guard_warnings, rising


def test_diversity_counts_systems_elements_and_evenness():
    even = diversity([Composition("CuAu"), Composition("PdAu"), Composition("Cu")])
    assert even == {"chemsys": 3, "elements": 3, "chemsys_entropy": pytest.approx(1.0)}
    one = diversity([Composition("CuAu"), Composition("Cu3Au"), Composition("CuAu3")])
    assert one["chemsys"] == 1 and one["chemsys_entropy"] == 0.0
    skewed = diversity([Composition("CuAu")] * 9 + [Composition("Pd")])
    assert 0.0 < skewed["chemsys_entropy"] < 0.5
    assert diversity([]) == {"chemsys": 0, "elements": 0, "chemsys_entropy": 0.0}


def test_rising_needs_every_step_up():
    assert rising([0.10, 0.12, 0.15], 2)
    assert not rising([0.10, 0.15, 0.12], 2)
    assert not rising([0.12, 0.15], 2)  # too short to tell
    assert not rising([0.10, None, 0.15], 2)  # a gap breaks the run
    assert rising([0.3, 0.1, 0.2], 1)
    # Noise-sized steps are not drift once a minimum rise is asked for.
    assert rising([0.191, 0.191 + 1e-4, 0.192], 2)
    assert not rising([0.191, 0.191 + 1e-4, 0.192], 2, min_fraction=0.1)
    assert rising([0.15, 0.16, 0.17], 2, min_fraction=0.1)


def test_concentrated_compares_with_what_was_possible():
    assert concentrated(1, 8, 7, 0.25)  # 8 picks, 7 systems open, all in one
    assert not concentrated(3, 8, 7, 0.25)
    assert not concentrated(1, 8, 1, 0.25)  # only one system exists: nothing to spread over
    assert not concentrated(1, 1, 7, 0.25)  # a single pick cannot spread
    assert concentrated(1, 3, 7, 0.5)  # 3 picks could have covered 3 systems


def test_a_collapsing_campaign_trips_both_guards_and_a_healthy_one_none():
    collapsing = guard_warnings([0.10, 0.12, 0.15], 1, 8, 7, rise_rounds=2, min_chemsys_share=0.25)
    noisy = guard_warnings([0.191, 0.1912, 0.192], 4, 8, 7, rise_rounds=2, min_chemsys_share=0.25)
    assert noisy == []
    assert len(collapsing) == 2
    assert "rose for 2 rounds" in collapsing[0] and "diversity collapse" in collapsing[1]
    healthy = guard_warnings([0.15, 0.12, 0.13], 4, 8, 7, rise_rounds=2, min_chemsys_share=0.25)
    assert healthy == []
    # The first rounds have no held-out history yet.
    assert guard_warnings([None, 0.2], 4, 8, 7, rise_rounds=2, min_chemsys_share=0.25) == []


def test_toy_campaign_logs_guard_metrics_and_stays_quiet(toy_campaign):
    with sqlite3.connect(toy_campaign / "campaign.db") as con:
        rows = con.execute("select metrics from rounds order by `index`").fetchall()
    metrics = [json.loads(m) for (m,) in rows]
    for m in metrics:
        assert m["holdout_entries"] >= 1  # bcc and hcp polymorphs of Cu, Au, Pd
        assert m["holdout_mae"] is not None and m["holdout_mae"] >= 0
        assert 0 < m["train_real_fraction"] < 1
        assert m["validated_chemsys"] >= 1
        assert m["guard_warnings"] == []
    status = cli("status", toy_campaign)
    assert status.returncode == 0 and "warning" not in status.stdout
    assert "MAE held-out" in status.stdout
