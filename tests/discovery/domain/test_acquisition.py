from __future__ import annotations

import numpy as np
import pytest

from discovery.domain.acquisition import select
from discovery.domain.records import ScoredCandidate


def pool():
    return [
        ScoredCandidate(1, "Cu-Au", 0.10, 0.01),
        ScoredCandidate(2, "Cu-Au", 0.00, 0.00),
        ScoredCandidate(3, "Cu-Pd", 0.05, 0.20),
        ScoredCandidate(4, "Cu-Pd", 0.02, 0.00),
        ScoredCandidate(5, "Au-Pd", 0.30, 0.01),
    ]


def test_greedy_takes_lowest_mean():
    assert select(pool(), 3, "greedy", np.random.default_rng(0)) == [2, 4, 3]


def test_lcb_prefers_uncertain_candidates():
    # 3 has mean 0.05 but spread 0.2: 0.05 - 1.0 * 0.2 = -0.15 ranks first
    assert select(pool(), 2, "lcb", np.random.default_rng(0), kappa=1.0) == [3, 2]
    assert select(pool(), 2, "lcb", np.random.default_rng(0), kappa=0.0) == [2, 4]


def test_cap_per_chemical_system():
    picked = select(pool(), 4, "greedy", np.random.default_rng(0), max_per_chemsys=1)
    assert picked == [2, 4, 5]


def test_random_is_seeded_and_a_permutation():
    a = select(pool(), 5, "random", np.random.default_rng(3))
    b = select(pool(), 5, "random", np.random.default_rng(3))
    assert a == b and sorted(a) == [1, 2, 3, 4, 5]


def test_budget_edge_cases():
    assert select(pool(), 0, "greedy", np.random.default_rng(0)) == []
    assert select([], 3, "greedy", np.random.default_rng(0)) == []
    assert len(select(pool(), 99, "greedy", np.random.default_rng(0))) == 5
    with pytest.raises(ValueError, match="unknown acquisition"):
        select(pool(), 1, "best", np.random.default_rng(0))


def test_thompson_is_seeded_and_follows_the_spread():
    a = select(pool(), 3, "thompson", np.random.default_rng(5))
    assert a == select(pool(), 3, "thompson", np.random.default_rng(5))
    # With no spread, a draw is the mean: Thompson sampling becomes greedy.
    flat = [ScoredCandidate(c.candidate_id, c.chemsys, c.e_hull_mean, 0.0) for c in pool()]
    assert select(flat, 3, "thompson", np.random.default_rng(5)) == select(
        flat, 3, "greedy", np.random.default_rng(0)
    )
    # A wide spread makes a poor mean win sometimes, over many draws.
    wide = [ScoredCandidate(1, "A", 0.0, 0.0), ScoredCandidate(2, "A", 0.2, 0.5)]
    wins = sum(
        select(wide, 1, "thompson", np.random.default_rng(seed)) == [2] for seed in range(200)
    )
    assert 40 < wins < 100  # P(N(0.2, 0.5) < 0) = 0.34
