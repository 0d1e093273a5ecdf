"""How much teacher-labelled synthetic data a campaign's fine-tuning replays: a share that
falls as real (simulator-validated) data grows, so the pretrained knowledge anchors the first
rounds and real data takes over. Pure arithmetic and seeded sampling; the learn stage reads
the replay file and records the numbers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np


def synthetic_count(size: int, halving: int, n_real: int) -> int:
    """Synthetic entries to mix with `n_real` real ones: `size` with no real data, half of it
    at `halving` real entries, falling towards zero as 1/n_real beyond."""
    if size < 0 or halving < 1 or n_real < 0:
        raise ValueError("size and n_real must be >= 0 and halving >= 1")
    return round(size * halving / (halving + n_real))


def synthetic_share(n_real: int, n_synthetic: int) -> float | None:
    """Synthetic entries' share of the training set; None for an empty set."""
    total = n_real + n_synthetic
    return n_synthetic / total if total else None


def balanced_sample(groups: Sequence[str], n: int, seed: int | Sequence[int]) -> list[int]:
    """Indices of `n` items drawn without replacement, as evenly across `groups` (one label
    per item, e.g. its chemical system) as the groups' sizes allow: a seeded round robin over
    the groups, each shuffled. Sorted, so the draw does not depend on the order it was made in."""
    if n >= len(groups):
        return list(range(len(groups)))
    rng = np.random.default_rng(seed)
    members: dict[str, list[int]] = defaultdict(list)
    for i, group in enumerate(groups):
        members[group].append(i)
    queues = [list(rng.permutation(members[g])) for g in sorted(members)]
    picked: list[int] = []
    while len(picked) < n:
        for queue in rng.permutation(len(queues)):
            if queues[queue] and len(picked) < n:
                picked.append(int(queues[queue].pop()))
    return sorted(picked)


def share_not_falling(history: Sequence[tuple[int, float | None]]) -> bool:
    """True when the last round's real entries grew over the round before but its synthetic
    share did not fall: `history` is (real entries, synthetic share) per round, oldest first."""
    if len(history) < 2:
        return False
    (real_before, share_before), (real_now, share_now) = history[-2], history[-1]
    if share_before is None or share_now is None or share_before == 0:
        return False
    return real_now > real_before and share_now >= share_before
