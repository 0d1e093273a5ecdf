"""Choosing which screened candidates the simulator validates this round."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from discovery.domain.records import ScoredCandidate


def acquisition_scores(
    pool: Sequence[ScoredCandidate], strategy: str, kappa: float, rng: np.random.Generator
) -> np.ndarray:
    """Lower is better. lcb is optimistic: a wide ensemble spread makes a candidate attractive.
    thompson draws one plausible value per candidate from N(mean, std^2) and ranks the draws,
    so exploration follows the model's own uncertainty without a tuned kappa."""
    mean = np.array([c.e_hull_mean for c in pool], dtype=float)
    std = np.array([c.e_hull_std for c in pool], dtype=float)
    if strategy == "greedy":
        return mean
    if strategy == "lcb":
        return mean - kappa * std
    if strategy == "thompson":
        return mean + std * rng.standard_normal(len(pool))
    if strategy == "random":
        return rng.random(len(pool))
    raise ValueError(
        f"unknown acquisition strategy {strategy!r}; use greedy, lcb, thompson or random"
    )


def select(
    pool: Sequence[ScoredCandidate],
    budget: int,
    strategy: str,
    rng: np.random.Generator,
    kappa: float = 1.0,
    max_per_chemsys: int | None = None,
) -> list[int]:
    """Candidate ids in pick order: best score first, at most `max_per_chemsys` per system."""
    if budget <= 0 or not pool:
        return []
    scores = acquisition_scores(pool, strategy, kappa, rng)
    # Stable sort with the id as tie-breaker keeps the choice reproducible.
    order = sorted(range(len(pool)), key=lambda i: (scores[i], pool[i].candidate_id))
    taken: Counter[str] = Counter()
    picked: list[int] = []
    for i in order:
        c = pool[i]
        if max_per_chemsys is not None and taken[c.chemsys] >= max_per_chemsys:
            continue
        picked.append(c.candidate_id)
        taken[c.chemsys] += 1
        if len(picked) == budget:
            break
    return picked
