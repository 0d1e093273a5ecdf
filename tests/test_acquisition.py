from __future__ import annotations

import numpy as np
import pytest

from discovery.acquisition import select
from discovery.records import ScoredCandidate


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
