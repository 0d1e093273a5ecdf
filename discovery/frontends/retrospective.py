"""Retrospective active learning: replay a campaign on a pool whose DFT labels are known.

The pool is a table of formulas; the Oracle holds their labels and reveals a row's only when
it is acquired, so the loop learns exactly what a real campaign would. What is known before
any acquisition is the reference hull at each composition (for WBM: the Materials Project
hull, `e_form - e_above_hull`), which turns a predicted formation energy into a predicted
hull distance, as in the campaign and in Matbench Discovery.

Each round uses the campaign's own pieces: `discovery.domain.acquisition.select` picks, and a
composition `models.Ensemble` is retrained from scratch on everything acquired so far.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from pymatgen.core import Composition

from discovery.domain.acquisition import select
from discovery.domain.collapse_guards import diversity, guard_warnings
from discovery.domain.records import ScoredCandidate

log = logging.getLogger(__name__)

LEARNING_STRATEGIES = ("greedy", "lcb", "thompson", "greedy_capped", "random")


@dataclass(frozen=True)
class Pool:
    """What a campaign may look at before acquiring: formulas and the reference hull."""

    ids: np.ndarray  # row ids, 0..n-1
    compositions: list[Composition]
    chemsys: list[str]
    hull_reference: np.ndarray  # formation energy of the reference hull at each composition
    # A prior formation-energy estimate per row (a pretrained model's zero-shot prediction),
    # for target="prior_residual"; NaN where it has none.
    prior: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


class Oracle:
    """The DFT labels, revealed one acquisition at a time; remembers what it revealed."""

    def __init__(self, e_form: np.ndarray, e_above_hull: np.ndarray) -> None:
        self._e_form = np.asarray(e_form, dtype=float)
        self._e_hull = np.asarray(e_above_hull, dtype=float)
        self.revealed: set[int] = set()

    def reveal(self, ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = list(ids)
        self.revealed.update(ids)
        return self._e_form[ids], self._e_hull[ids]


@dataclass
class RoundResult:
    round: int
    acquired: int
    stable: int
    hit_rate: float
    cumulative_stable: int
    daf: float
    prospective_mae: float | None  # on this round's picks, before retraining
    holdout_mae: float | None
    holdout_spearman: float | None
    holdout_miscalibration_area: float | None
    stable_chemsys: int  # distinct chemical systems among everything stable found so far
    stable_elements: int
    wall_s: float
    # What the campaign's collapse guards (discovery.domain.collapse_guards) would say after
    # this round.
    guard_warnings: list[str] = field(default_factory=list)


@dataclass
class StrategyRun:
    strategy: str
    seed: int
    rounds: list[RoundResult] = field(default_factory=list)
    picks: list[list[int]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "strategy": self.strategy,
            "seed": self.seed,
            "rounds": [asdict(r) for r in self.rounds],
        }


@dataclass(frozen=True)
class LoopSettings:
    rounds: int = 10
    batch: int = 100
    seed_fraction: float = 0.01
    n_members: int = 3
    kappa: float = 1.0
    max_per_chemsys: int = 2  # for greedy_capped
    epochs: int = 60
    patience: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    # "e_form": learn formation energies, as the campaign does; "hull_distance": learn the
    # distance to the reference hull (delta learning on top of prior knowledge), which takes
    # out the chemistry the reference hull already knows; "prior_residual": learn the error
    # of a pretrained model's prediction (Pool.prior), i.e. correct it with what the
    # campaign validates.
    target: str = "e_form"
    # A deliberately collapsing campaign, for testing the guards: acquisitions only from this
    # chemical system while the pool keeps all of them.
    restrict_chemsys: str | None = None
    guard_rise_rounds: int = 2
    guard_min_chemsys_share: float = 0.25
    guard_min_rise_fraction: float = 0.1


@dataclass
class _Tally:
    """Running totals of one campaign: what was found so far, and each round's record."""

    pool: Pool
    prevalence: float
    cumulative: int = 0
    stable_ids: list[int] = field(default_factory=list)

    def record(
        self, r: int, picked: list[int], e_hull: np.ndarray, started: float, **model_metrics
    ) -> RoundResult:
        stable = int(np.sum(e_hull <= 0))
        self.cumulative += stable
        self.stable_ids += [i for i, h in zip(picked, e_hull, strict=True) if h <= 0]
        div = diversity([self.pool.compositions[i] for i in self.stable_ids])
        hit = stable / len(picked) if picked else 0.0
        fields_ = {
            "prospective_mae": None,
            "holdout_mae": None,
            "holdout_spearman": None,
            "holdout_miscalibration_area": None,
            **model_metrics,
        }
        return RoundResult(
            round=r,
            acquired=len(picked),
            stable=stable,
            hit_rate=hit,
            cumulative_stable=self.cumulative,
            daf=hit / self.prevalence if self.prevalence > 0 else float("nan"),
            stable_chemsys=int(div["chemsys"]),
            stable_elements=int(div["elements"]),
            wall_s=time.perf_counter() - started,
            **fields_,
        )


def pool_from_table(
    formulas: Sequence[str],
    e_form: np.ndarray,
    e_hull: np.ndarray,
    prior: np.ndarray | None = None,
) -> Pool:
    """The labels are used only for the reference hull at each composition, e_form - e_hull,
    which depends on the composition alone."""
    compositions = [Composition(f) for f in formulas]
    return Pool(
        ids=np.arange(len(compositions)),
        compositions=compositions,
        chemsys=[c.chemical_system for c in compositions],
        hull_reference=np.asarray(e_form, dtype=float) - np.asarray(e_hull, dtype=float),
        prior=None if prior is None else np.asarray(prior, dtype=float),
    )


def split_holdout(pool: Pool, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(acquirable ids, held-out ids), grouped by reduced formula so that the held-out slice
    measures generalisation to formulas the loop never sees."""
    from models.splits import grouped_split

    formulas = [c.reduced_formula for c in pool.compositions]
    acquirable, held = grouped_split(formulas, fraction, seed)
    return np.array(sorted(acquirable)), np.array(sorted(held))


def _fit(pool: Pool, ids: list[int], e_form: np.ndarray, settings: LoopSettings, seed: int):
    from models import CompositionSettings, Ensemble, TrainSettings

    ensemble = Ensemble(CompositionSettings(), n_members=settings.n_members, seed=seed)
    train = TrainSettings(
        epochs=settings.epochs,
        lr=settings.lr,
        batch_size=settings.batch_size,
        patience=settings.patience,
    )
    ensemble.fit([pool.compositions[i] for i in ids], list(e_form), train)
    return ensemble


def _target_offset(pool: Pool, target: str) -> np.ndarray:
    """What is subtracted from formation energies before training (and added back after)."""
    if target == "e_form":
        return np.zeros(len(pool))
    if target == "hull_distance":
        return pool.hull_reference
    if target == "prior_residual":
        if pool.prior is None:
            raise ValueError("target 'prior_residual' needs a pool with prior predictions")
        # Rows the prior does not cover fall back to the reference hull.
        return np.where(np.isnan(pool.prior), pool.hull_reference, pool.prior)
    raise ValueError(
        f"target must be 'e_form', 'hull_distance' or 'prior_residual', got {target!r}"
    )


def _predict(ensemble, pool: Pool, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    preds = ensemble.predict([pool.compositions[i] for i in ids], batch_size=1024)
    return np.array([p.mean for p in preds]), np.array([p.std for p in preds])


def run_learning(
    pool: Pool,
    oracle: Oracle,
    acquirable: np.ndarray,
    holdout: np.ndarray,
    holdout_e_form: np.ndarray,
    strategy: str,
    seed: int,
    settings: LoopSettings,
    prevalence: float,
) -> StrategyRun:
    """One campaign: a random seed set, then `rounds` rounds of `batch` acquisitions with the
    ensemble retrained on everything revealed. `holdout_e_form` is for scoring only."""
    from models.metrics import error_std_spearman, miscalibration_area

    if strategy not in LEARNING_STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {LEARNING_STRATEGIES}")
    rng = np.random.default_rng([seed, 7])
    seed_ids = seed_set(acquirable, settings.seed_fraction, seed)
    known_ids = list(seed_ids)
    known_e_form = list(oracle.reveal(seed_ids)[0])
    open_ids = np.setdiff1d(acquirable, seed_ids)
    run = StrategyRun(strategy, seed)
    tally = _Tally(pool, prevalence)
    for r in range(1, settings.rounds + 1):
        started = time.perf_counter()
        offset = _target_offset(pool, settings.target)
        known = np.array(known_ids, dtype=int)
        ensemble = _fit(
            pool, known_ids, np.array(known_e_form) - offset[known], settings, seed * 1000 + r
        )
        mean, std = _predict(ensemble, pool, open_ids)
        mean = mean + offset[open_ids]  # back to formation energies
        scored = [
            ScoredCandidate(int(i), pool.chemsys[i], float(m - pool.hull_reference[i]), float(s))
            for i, m, s in zip(open_ids, mean, std, strict=True)
        ]
        open_systems = {c.chemsys for c in scored}
        if settings.restrict_chemsys is not None:
            scored = [c for c in scored if c.chemsys == settings.restrict_chemsys]
        acq, cap = strategy, None
        if strategy == "greedy_capped":
            acq, cap = "greedy", settings.max_per_chemsys
        picked = select(scored, settings.batch, acq, rng, settings.kappa, cap)
        pick_pred = dict(zip(open_ids.tolist(), mean.tolist(), strict=True))
        e_form, e_hull = oracle.reveal(picked)
        hold_mean, hold_std = _predict(ensemble, pool, holdout)
        hold_err = hold_mean + offset[holdout] - holdout_e_form
        has_holdout = len(holdout) > 0
        run.rounds.append(
            tally.record(
                r,
                picked,
                e_hull,
                started,
                prospective_mae=(
                    float(np.mean(np.abs([pick_pred[i] for i in picked] - e_form)))
                    if picked
                    else None
                ),
                holdout_mae=float(np.mean(np.abs(hold_err))) if has_holdout else None,
                holdout_spearman=error_std_spearman(hold_err, hold_std) if has_holdout else None,
                holdout_miscalibration_area=(
                    miscalibration_area(hold_err, hold_std) if has_holdout else None
                ),
            )
        )
        run.picks.append(picked)
        last = run.rounds[-1]
        last.guard_warnings = guard_warnings(
            [r_.holdout_mae for r_ in run.rounds],
            len({pool.chemsys[i] for i in picked}),
            len(picked),
            len(open_systems),
            settings.guard_rise_rounds,
            settings.guard_min_chemsys_share,
            settings.guard_min_rise_fraction,
        )
        log.info(
            "%s seed %d round %d: %d/%d stable (hit rate %.2f), holdout MAE %.3f",
            strategy, seed, r, last.stable, len(picked), last.hit_rate, last.holdout_mae or 0.0,
        )  # fmt: skip
        known_ids += picked
        known_e_form += list(e_form)
        open_ids = np.setdiff1d(open_ids, picked)
    return run


def run_fixed_ranking(
    pool: Pool,
    oracle: Oracle,
    acquirable: np.ndarray,
    score: Callable[[np.ndarray], np.ndarray],
    name: str,
    seed: int,
    settings: LoopSettings,
    prevalence: float,
) -> StrategyRun:
    """A no-learning reference: after the same seed set, take the best `batch` rows of a fixed
    ranking (e.g. a published model's zero-shot predicted hull distance) every round."""
    seed_ids = seed_set(acquirable, settings.seed_fraction, seed)
    oracle.reveal(seed_ids)
    open_ids = np.setdiff1d(acquirable, seed_ids)
    scores = score(open_ids)
    # NaN scores (no prediction for that row) go last.
    order = open_ids[np.lexsort((open_ids, np.nan_to_num(scores, nan=np.inf)))]
    run = StrategyRun(name, seed)
    tally = _Tally(pool, prevalence)
    for r in range(1, settings.rounds + 1):
        started = time.perf_counter()
        picked = order[(r - 1) * settings.batch : r * settings.batch].tolist()
        _, e_hull = oracle.reveal(picked)
        run.rounds.append(tally.record(r, picked, e_hull, started))
        run.picks.append(picked)
    return run


def seed_set(acquirable: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The random starting set, the same for every strategy at one seed."""
    n = max(1, int(round(fraction * len(acquirable))))
    return np.sort(np.random.default_rng([seed, 1]).choice(acquirable, size=n, replace=False))
