"""A generator whose pool runs dry widens within its configured limits and says so."""

from __future__ import annotations

import logging

import numpy as np

from discovery.config import CampaignConfig
from discovery.domain.generation.dedup import Deduplicator
from discovery.engine.candidate_generation import generate_candidates, widened


def substitution_only(**widening) -> CampaignConfig:
    return CampaignConfig(
        name="dry",
        chemical_systems=["Li-Mn-O"],
        generation={
            "substitution": {"budget": 12},
            "random": {"enabled": False},
            "widening": widening,
        },
    )


def second_round(config: CampaignConfig):
    seen = Deduplicator()
    generate_candidates(config, np.random.default_rng(0), seen)
    generate_candidates(config, np.random.default_rng(1), seen)
    return generate_candidates(config, np.random.default_rng(2), seen)


def test_a_dry_substitution_pool_widens_and_keeps_more(caplog):
    narrow, narrow_stats = second_round(substitution_only(enabled=False))
    with caplog.at_level(logging.INFO, logger="discovery"):
        wide, wide_stats = second_round(substitution_only())
    assert len(narrow) < 12 and "widened_substitution" not in narrow_stats.as_metrics()
    assert len(wide) > len(narrow)
    assert 1 <= wide_stats.as_metrics()["widened_substitution"] <= 3
    assert "pool ran dry" in caplog.text and "substitution.threshold 0.001 -> 0.0001" in caplog.text


def test_widening_stays_within_its_limits():
    config = substitution_only(max_steps=2, min_threshold=1e-4, max_formula_units=3)
    one = widened(config, "substitution", 1)
    assert one is not None and one[0].generation.substitution.threshold == 1e-4
    assert widened(config, "substitution", 2) is None  # the threshold is at its floor
    assert widened(config, "random", 1)[0].generation.random.max_formula_units == 3
    assert widened(config, "random", 2) is None  # the formula-unit limit is reached
    assert widened(config, "partial", 3) is None  # beyond max_steps
    assert widened(substitution_only(enabled=False), "substitution", 1) is None
