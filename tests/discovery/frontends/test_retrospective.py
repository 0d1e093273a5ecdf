"""Retrospective active learning: the oracle leaks nothing, and the tallies are right."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from discovery.frontends.retrospective import (
    LoopSettings,
    Oracle,
    pool_from_table,
    run_fixed_ranking,
    run_learning,
    seed_set,
    split_holdout,
)

ELEMENTS = ["Li", "Na", "K", "Mg", "Ca", "Al", "Fe", "Mn", "Cu", "Zn", "O", "S", "F", "Cl", "N"]
TINY = LoopSettings(rounds=2, batch=15, seed_fraction=0.1, n_members=2, epochs=4, patience=4)


# Tiny models: one torch thread (see conftest.single_thread).
pytestmark = pytest.mark.usefixtures("single_thread")


def synthetic_table(n: int = 160, seed: int = 0):
    """Binary formulas with a smooth formation energy and a reference hull below it."""
    rng = np.random.default_rng(seed)
    formulas, e_form, e_hull = [], [], []
    for _ in range(n):
        a, b = rng.choice(ELEMENTS, size=2, replace=False)
        x, y = (int(v) for v in rng.integers(1, 4, size=2))
        formulas.append(f"{a}{x}{b}{y}")
        value = -0.4 * abs(ELEMENTS.index(a) - ELEMENTS.index(b)) / len(ELEMENTS)
        value += 0.2 * rng.standard_normal()
        e_form.append(value)
        e_hull.append(max(0.0, rng.normal(0.05, 0.1)) if rng.random() > 0.3 else -0.01)
    return formulas, np.array(e_form), np.array(e_hull)


def test_oracle_reveals_only_what_is_asked():
    oracle = Oracle(np.array([1.0, 2.0, 3.0]), np.array([0.1, -0.2, 0.3]))
    e_form, e_hull = oracle.reveal([2, 0])
    assert e_form.tolist() == [3.0, 1.0] and e_hull.tolist() == [0.3, 0.1]
    assert oracle.revealed == {0, 2}


def test_unacquired_labels_never_reach_the_model():
    formulas, e_form, e_hull = synthetic_table()
    pool = pool_from_table(formulas, e_form, e_hull)
    acquirable, holdout = split_holdout(pool, 0.1, seed=0)

    def campaign(oracle):
        return run_learning(
            pool, oracle, acquirable, holdout, e_form[holdout], "greedy", 0, TINY, 0.3
        )

    clean_oracle = Oracle(e_form, e_hull)
    clean = campaign(clean_oracle)
    # Poison every label the clean run never saw, keeping the reference hull (prior knowledge)
    # the same: e_form and e_above_hull move together.
    unseen = np.setdiff1d(np.arange(len(pool)), sorted(clean_oracle.revealed))
    assert len(unseen) > 0
    poisoned_form, poisoned_hull = e_form.copy(), e_hull.copy()
    poisoned_form[unseen] += 5.0
    poisoned_hull[unseen] += 5.0
    poisoned = campaign(Oracle(poisoned_form, poisoned_hull))
    assert poisoned.picks == clean.picks
    for a, b in zip(clean.rounds, poisoned.rounds, strict=True):
        assert a.prospective_mae == b.prospective_mae
        assert a.holdout_mae == b.holdout_mae


def test_fixed_ranking_tallies_by_hand():
    # Six rows; the ranking walks 5, 4, 3, 2, 1, 0; rows 5, 3 and 2 are stable.
    e_hull = np.array([0.2, 0.1, -0.05, 0.0, 0.3, -0.1])
    pool = pool_from_table(["Cu", "Au", "CuAu", "Cu3Au", "CuAu3", "Pd"], np.zeros(6), e_hull)
    settings = LoopSettings(rounds=2, batch=2, seed_fraction=0.0)
    acquirable = np.arange(6)
    seeds = seed_set(acquirable, 0.0, 0)  # at least one row: the run starts from it
    assert len(seeds) == 1
    run = run_fixed_ranking(
        pool, Oracle(np.zeros(6), e_hull), acquirable, lambda ids: -ids.astype(float), "rank",
        0, settings, prevalence=0.5,
    )  # fmt: skip
    order = [i for i in (5, 4, 3, 2, 1, 0) if i not in seeds]
    stable = {2, 3, 5}
    first, second = order[:2], order[2:4]
    assert run.picks == [first, second]
    assert run.rounds[0].hit_rate == sum(i in stable for i in first) / 2
    assert run.rounds[1].cumulative_stable == sum(i in stable for i in first + second)
    assert run.rounds[0].daf == pytest.approx(run.rounds[0].hit_rate / 0.5)


def test_seed_set_is_shared_and_holdout_grouped_by_formula():
    formulas, e_form, e_hull = synthetic_table()
    pool = pool_from_table(formulas, e_form, e_hull)
    acquirable, holdout = split_holdout(pool, 0.2, seed=0)
    assert set(acquirable).isdisjoint(holdout)
    reduced = [c.reduced_formula for c in pool.compositions]
    assert {reduced[i] for i in acquirable}.isdisjoint({reduced[i] for i in holdout})
    assert np.array_equal(seed_set(acquirable, 0.1, 3), seed_set(acquirable, 0.1, 3))
    assert not np.array_equal(seed_set(acquirable, 0.1, 3), seed_set(acquirable, 0.1, 4))


def test_guards_trip_on_a_collapsing_campaign_and_stay_quiet_on_a_healthy_one():
    formulas, e_form, e_hull = synthetic_table(200, seed=2)
    # Plenty of one system, so a campaign restricted to it can fill its batches.
    target = "Cu-O"
    extra = [f"Cu{x}O{y}" for x in range(1, 7) for y in range(1, 7)]
    formulas += extra
    e_form = np.concatenate([e_form, np.linspace(-1.0, -0.2, len(extra))])
    e_hull = np.concatenate([e_hull, np.linspace(-0.05, 0.3, len(extra))])
    pool = pool_from_table(formulas, e_form, e_hull)
    acquirable, holdout = split_holdout(pool, 0.1, seed=0)
    settings = LoopSettings(rounds=3, batch=8, seed_fraction=0.1, n_members=2, epochs=4)

    def campaign(**changes):
        return run_learning(
            pool, Oracle(e_form, e_hull), acquirable, holdout, e_form[holdout], "greedy", 0,
            replace(settings, **changes), 0.3,
        )  # fmt: skip

    collapsing = campaign(restrict_chemsys=target)
    assert all({pool.chemsys[i] for i in picks} == {target} for picks in collapsing.picks)
    assert all(any("diversity collapse" in w for w in r.guard_warnings) for r in collapsing.rounds)
    healthy = campaign()
    assert not any("diversity collapse" in w for r in healthy.rounds for w in r.guard_warnings)
