"""Guards against model collapse: a model retrained on its own picks can drift on real data
and narrow what it proposes. Each round measures both, and these rules say when to warn.

Pure functions over per-round numbers; the learn stage computes the numbers and stores any
warning in the round's metrics, where the log, MLflow and `discovery status` show it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from pymatgen.core import Composition


def diversity(compositions: Iterable[Composition]) -> dict[str, float]:
    """Distinct chemical systems and elements, and the Shannon entropy of the chemical-system
    distribution normalised to [0, 1] (1: evenly spread; 0: one system)."""
    systems: Counter[str] = Counter()
    elements: set[str] = set()
    for comp in compositions:
        systems[comp.chemical_system] += 1
        elements.update(el.symbol for el in comp.elements)
    total = sum(systems.values())
    entropy = 0.0
    if len(systems) > 1:
        entropy = -sum(n / total * math.log(n / total) for n in systems.values())
        entropy /= math.log(len(systems))
    return {"chemsys": len(systems), "elements": len(elements), "chemsys_entropy": entropy}


def rising(history: Sequence[float | None], rounds: int, min_fraction: float = 0.0) -> bool:
    """True when the last `rounds` steps of `history` each went up, by `min_fraction` of the
    starting value in all (missing values break it). Retraining noise moves a held-out error
    by a few per cent; drift is what keeps going beyond that."""
    window = history[-(rounds + 1) :]
    tail = [v for v in window if v is not None]
    if len(tail) < rounds + 1:
        return False
    steps_up = all(b > a for a, b in zip(tail, tail[1:], strict=False))
    return steps_up and tail[-1] - tail[0] > min_fraction * abs(tail[0])


def concentrated(n_chemsys_picked: int, n_picked: int, n_chemsys_open: int, share: float) -> bool:
    """True when a round's picks cover fewer chemical systems than `share` of what they could
    have covered (the open pool's systems, or one per pick if fewer picks)."""
    possible = min(n_chemsys_open, n_picked)
    if possible < 2:
        return False  # nothing to spread over: not a collapse
    return n_chemsys_picked / possible < share


def guard_warnings(
    holdout_mae_history: Sequence[float | None],
    picked_chemsys: int,
    picked: int,
    open_chemsys: int,
    rise_rounds: int,
    min_chemsys_share: float,
    min_rise_fraction: float = 0.1,
) -> list[str]:
    """Warnings for the latest round; `holdout_mae_history` ends with this round's value."""
    warnings = []
    if rising(holdout_mae_history, rise_rounds, min_rise_fraction):
        recent = ", ".join(f"{v:.3f}" for v in holdout_mae_history[-(rise_rounds + 1) :])
        warnings.append(
            f"held-out error rose for {rise_rounds} rounds in a row ({recent} eV/atom): the "
            "model may be drifting on its own picks"
        )
    if concentrated(picked_chemsys, picked, open_chemsys, min_chemsys_share):
        warnings.append(
            f"diversity collapse: this round's {picked} validated candidates span "
            f"{picked_chemsys} chemical system(s) of {open_chemsys} in the pool"
        )
    return warnings
