"""Train/validation split grouped by reduced formula."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Fewer samples than this make a validation MAE too noisy to stop on.
MIN_SAMPLES_FOR_VAL = 8


def grouped_split(
    formulas: Sequence[str], val_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Indices (train, val) with no formula on both sides, so validation measures transfer to
    unseen compositions rather than to other polymorphs of trained ones. Empty val when a split
    is impossible or disabled."""
    n = len(formulas)
    groups = sorted(set(formulas))
    if val_fraction <= 0 or len(groups) < 2 or n < MIN_SAMPLES_FOR_VAL:
        return list(range(n)), []

    order = np.random.default_rng(seed).permutation(len(groups))
    target = val_fraction * n
    val_groups: set[str] = set()
    n_val = 0
    sizes = {g: 0 for g in groups}
    for f in formulas:
        sizes[f] += 1
    # Always leave at least one group for training.
    for gi in order[: len(groups) - 1]:
        if n_val >= target:
            break
        val_groups.add(groups[gi])
        n_val += sizes[groups[gi]]

    train = [i for i, f in enumerate(formulas) if f not in val_groups]
    val = [i for i, f in enumerate(formulas) if f in val_groups]
    return train, val
