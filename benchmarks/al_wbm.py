"""Retrospective active learning on WBM: does retraining on validated data find more stable
materials than random picks and than zero-shot rankings by published models?

    python benchmarks/al_wbm.py [--labels CSV] [--rounds 10] [--batch 100] [--seeds 3]

The pool is the rows of the labels CSV; 10 % of its formulas are held out (never acquired,
to measure generalisation). Each seed starts every strategy from the same random 1 % of the
pool, then runs `rounds` rounds of `batch` acquisitions: a composition ensemble is retrained
from scratch on everything revealed so far and `discovery.domain.acquisition.select` picks (the
campaign's own code). The zero-shot references take the same seed set, then walk down a fixed
ranking by a published model's predicted hull distance. Predicted hull distances use the
reference hull at each composition (`e_form - e_above_hull`: the MP hull, known beforehand).
Writes benchmarks/results/al_wbm.json, al_wbm.png and al_wbm.md (a table for the docs).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from wbm_data import (  # noqa: E402
    DEFAULT_LABELS,
    E_FORM,
    E_HULL,
    PREDS_DIR,
    model_name,
    published_preds,
    read_labels,
)

from discovery.frontends.retrospective import (  # noqa: E402
    LEARNING_STRATEGIES,
    LoopSettings,
    Oracle,
    StrategyRun,
    pool_from_table,
    run_fixed_ranking,
    run_learning,
    split_holdout,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# Zero-shot rankings to compare with (leaderboard names); others in the folder are ignored.
ZERO_SHOT = ("chgnet-0.3.0", "mace-mp-0", "orb-v2")

log = logging.getLogger("al_wbm")


def summarise(runs: list[StrategyRun]) -> dict:
    """Mean and spread over seeds, per round."""
    hit = np.array([[r.hit_rate for r in run.rounds] for run in runs])
    cum = np.array([[r.cumulative_stable for r in run.rounds] for run in runs])
    out = {
        "hit_rate_per_round": hit.mean(axis=0).tolist(),
        "hit_rate_per_round_std": hit.std(axis=0).tolist(),
        "cumulative_stable": cum.mean(axis=0).tolist(),
        "cumulative_stable_std": cum.std(axis=0).tolist(),
        "daf_final": float(np.mean([run.rounds[-1].daf for run in runs])),
        "daf_mean": float(np.mean([[r.daf for r in run.rounds] for run in runs])),
        "stable_chemsys_final": float(np.mean([run.rounds[-1].stable_chemsys for run in runs])),
        "stable_elements_final": float(np.mean([run.rounds[-1].stable_elements for run in runs])),
        # Rounds (over all seeds) after which the collapse guards would have warned.
        "rounds_with_guard_warnings": sum(
            bool(r.guard_warnings) for run in runs for r in run.rounds
        ),
    }
    for key in ("prospective_mae", "holdout_mae", "holdout_spearman"):
        values = [[getattr(r, key) for r in run.rounds] for run in runs]
        if all(v is not None for row in values for v in row):
            out[f"{key}_per_round"] = np.mean(values, axis=0).tolist()
    out["per_seed"] = [run.as_dict() for run in runs]
    return out


def headline(strategies: dict) -> dict:
    """The best learning strategy (most stable found), over all of them and over those that
    learn from the campaign's data alone, and how each compares with random and with the
    zero-shot rankings."""
    learning = [n for n in strategies if not n.startswith("zero-shot") and n != "random"]
    from_scratch = [n for n in learning if n in LEARNING_STRATEGIES]
    out: dict = {}
    for key, names in (("best_strategy", learning), ("best_strategy_from_scratch", from_scratch)):
        best = max(names, key=lambda n: strategies[n]["cumulative_stable"][-1]) if names else None
        out[key] = best
        if best is None:
            continue
        for name in strategies:
            if name.startswith("zero-shot "):
                ratio = (
                    strategies[best]["cumulative_stable"][-1]
                    / strategies[name]["cumulative_stable"][-1]
                )
                out[f"{key}_vs_{name.removeprefix('zero-shot ')}"] = ratio
    return out


def plot(strategies: dict, batch: int, prevalence: float, path: Path) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, s in strategies.items():
        rounds = np.arange(1, len(s["hit_rate_per_round"]) + 1)
        style = "--" if name.startswith("zero-shot") else "-"
        for ax, key, x in (
            (ax1, "hit_rate_per_round", rounds),
            (ax2, "cumulative_stable", rounds * batch),
        ):
            mean, std = np.array(s[key]), np.array(s[f"{key}_std"])
            (line,) = ax.plot(x, mean, style, label=name, lw=1.4)
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    ax1.axhline(prevalence, color="k", lw=0.8, ls=":", label="prevalence")
    ax1.set(xlabel="round", ylabel="hit rate (stable / validated)")
    ax2.set(xlabel="candidates validated (after the seed set)", ylabel="stable found")
    ax1.legend(fontsize=7)
    fig.suptitle("Retrospective active learning on WBM labels (mean and std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(result: dict) -> str:
    lines = [
        "| strategy | hit rate, last round | DAF, last round | stable found | vs random "
        "| held-out MAE, last round |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in sorted(
        result["strategies"].items(), key=lambda kv: -kv[1]["cumulative_stable"][-1]
    ):
        mae = s.get("holdout_mae_per_round")
        lines.append(
            f"| {name} | {s['hit_rate_per_round'][-1]:.2f} | {s['daf_final']:.2f} "
            f"| {s['cumulative_stable'][-1]:.0f} ± {s['cumulative_stable_std'][-1]:.0f} "
            f"| {s['cumulative_vs_random']:.2f}x | {f'{mae[-1]:.3f}' if mae else '-'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--preds-dir", type=Path, default=PREDS_DIR)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--holdout", type=float, default=0.1)
    parser.add_argument("--seed-fraction", type=float, default=0.01)
    parser.add_argument("--strategies", nargs="+", default=list(LEARNING_STRATEGIES))
    parser.add_argument(
        "--target",
        choices=["e_form", "hull_distance"],
        default="hull_distance",
        help="what the ensemble learns (see discovery.frontends.retrospective.LoopSettings)",
    )
    parser.add_argument(
        "--prior",
        default="chgnet-0.3.0",
        help="also run greedy learning on top of this published model's predictions "
        "(target prior_residual); 'none' to skip",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "al_wbm.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    labels = read_labels(args.labels)
    pool = pool_from_table(list(labels.formula), labels[E_FORM].values, labels[E_HULL].values)
    acquirable, holdout = split_holdout(pool, args.holdout, seed=0)
    stable = labels[E_HULL].values <= 0
    prevalence = float(stable[acquirable].mean())
    settings = LoopSettings(
        rounds=args.rounds,
        batch=args.batch,
        seed_fraction=args.seed_fraction,
        n_members=args.members,
        epochs=args.epochs,
        target=args.target,
    )
    log.info(
        "pool %d rows (%d acquirable, %d held out), prevalence %.3f",
        len(pool), len(acquirable), len(holdout), prevalence,
    )  # fmt: skip

    def oracle() -> Oracle:
        return Oracle(labels[E_FORM].values, labels[E_HULL].values)

    preds = published_preds(args.preds_dir)
    joined = labels[["material_id"]].join(preds, on="material_id")
    # (name, pool, strategy, settings) of every learning campaign to run, for each seed.
    jobs = [(strategy, pool, strategy, settings) for strategy in args.strategies]
    prior_column = next((c for c in preds.columns if model_name(c) == args.prior), None)
    if prior_column is not None:
        prior_pool = replace(pool, prior=joined[prior_column].values)
        prior_settings = replace(settings, target="prior_residual")
        jobs.append((f"greedy on {args.prior}", prior_pool, "greedy", prior_settings))
    runs: dict[str, list[StrategyRun]] = {}
    for name, job_pool, strategy, job_settings in jobs:
        for seed in range(args.seeds):
            run = run_learning(
                job_pool,
                oracle(),
                acquirable,
                holdout,
                labels[E_FORM].values[holdout],
                strategy,
                seed,
                job_settings,
                prevalence,
            )
            runs.setdefault(name, []).append(run)
    for column in preds.columns:
        name = model_name(column)
        if name not in ZERO_SHOT:
            continue
        # Predicted distance to the reference hull; rows without a prediction rank last.
        predicted = joined[column].values - pool.hull_reference
        for seed in range(args.seeds):
            run = run_fixed_ranking(
                pool,
                oracle(),
                acquirable,
                lambda ids, p=predicted: p[ids],
                f"zero-shot {name}",
                seed,
                settings,
                prevalence,
            )
            runs.setdefault(f"zero-shot {name}", []).append(run)

    strategies = {name: summarise(group) for name, group in runs.items()}
    random_final = strategies["random"]["cumulative_stable"][-1] if "random" in strategies else 0
    for s in strategies.values():
        s["cumulative_vs_random"] = (
            s["cumulative_stable"][-1] / random_final if random_final else float("nan")
        )
    result = {
        "prevalence": prevalence,
        **headline(strategies),
        "strategies": strategies,
        "pool_rows": len(pool),
        "acquirable_rows": len(acquirable),
        "holdout_rows": len(holdout),
        "labels": str(args.labels),
        "settings": {**vars(settings), "seeds": args.seeds, "prior": args.prior},
        "wall_s": time.perf_counter() - started,
        "cpu_s": time.process_time(),
        "threads": args.threads,
        "host": {"python": platform.python_version(), "torch": torch.__version__},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(strategies, args.batch, prevalence, args.out.with_suffix(".png"))
    args.out.with_suffix(".md").write_text(table(result))
    log.info("best %s; wall %.0f s\n%s", result["best_strategy"], result["wall_s"], table(result))


if __name__ == "__main__":
    main()
