"""The synthetic share of fine-tuning: it halves at `halving` real entries and keeps falling;
the replayed sample is seeded and spread over chemical systems."""

from __future__ import annotations

from collections import Counter

import pytest

from discovery.domain.synthetic_share import (
    balanced_sample,
    share_not_falling,
    synthetic_count,
    synthetic_share,
)


def test_the_synthetic_count_halves_at_halving_and_keeps_falling():
    assert synthetic_count(256, 32, 0) == 256
    assert synthetic_count(256, 32, 32) == 128
    assert synthetic_count(256, 32, 96) == 64
    counts = [synthetic_count(256, 32, n) for n in range(0, 400, 10)]
    assert counts == sorted(counts, reverse=True)
    shares = [synthetic_share(n, synthetic_count(256, 32, n)) for n in range(1, 400, 10)]
    assert all(b < a for a, b in zip(shares, shares[1:], strict=False))
    assert synthetic_count(0, 32, 5) == 0
    with pytest.raises(ValueError):
        synthetic_count(256, 0, 5)


def test_the_share_is_synthetic_over_all():
    assert synthetic_share(3, 1) == 0.25
    assert synthetic_share(0, 0) is None


def test_the_sample_is_seeded_and_balanced_across_systems():
    groups = ["Cu-Au"] * 50 + ["Li-O"] * 10 + ["Na-Cl"] * 4
    picked = balanced_sample(groups, 18, [0, 1])
    assert picked == balanced_sample(groups, 18, [0, 1])
    assert picked != balanced_sample(groups, 18, [0, 2])
    assert len(set(picked)) == 18
    counts = Counter(groups[i] for i in picked)
    assert counts == {"Cu-Au": 7, "Li-O": 7, "Na-Cl": 4}
    assert balanced_sample(groups, 100, 0) == list(range(len(groups)))


def test_a_share_that_does_not_fall_while_real_data_grows_is_flagged():
    assert not share_not_falling([(5, 0.5)])
    assert not share_not_falling([(5, 0.5), (8, 0.4)])
    assert share_not_falling([(5, 0.5), (8, 0.5)])
    assert not share_not_falling([(5, 0.5), (5, 0.5)])  # no new real data: nothing to fall for
    assert not share_not_falling([(5, 0.0), (8, 0.0)])  # nothing replayed
