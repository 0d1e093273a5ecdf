"""Does a pretrained prior make campaigns find more stable materials per simulator call?

    python benchmarks/campaign_efficiency.py [--rounds 4] [--batch 16] [--seeds 3]
        [--checkpoint discovery/data/pretrained/oxides-v1.pt] [--workers 2]

For each chemical system the engine's own generators (the quickstart's settings, a seed of
their own) make a fixed pool of candidates; --partial adds that many symmetry-aware partial
substitutions (SAPS, off in the campaign default), without which each ternary pool holds only
some 30 substituted prototypes (whatever the budget or threshold), too few stable ones for a
64-validation campaign to tell good ranking from bad. The campaign's simulator (CHGNet, fmax 0.1,
150 steps) relaxes every pool structure once, together with the elements' polymorphs and the
bundled known phases. Those relaxed energies are the oracle: a campaign sees a structure's
label only once it spends a validation on it. Every arm is scored against the same hull,
that of all references and all pool structures ("stable": within --threshold of it).

Arms, each with the same budget (rounds x batch validations) and the same references:
- random: seeded random picks;
- scratch-<acq>: today's loop; round 0 random (no model yet), then an ensemble trained
  from scratch on the references and every validated structure (initial and relaxed, both
  labelled with the relaxed formation energy, as the learn stage does) screens the rest;
- pretrained-<acq>: the checkpoint screens round 0; every later round fine-tunes from the
  previous model on the same real data plus the checkpoint's synthetic replay set, weighted
  below real data and shrinking as real data grows (discovery.domain.synthetic_share);
- teacher: the teacher's own single-point energies on the unrelaxed structures, ranked once
  (a ceiling for a model distilled from single points; not a campaign one can afford at scale).

Predicted hull distances use the hull of what the campaign knows at that round (the
references plus its own validated structures), as the screen stage does. Relaxations are
cached under runs/campaign_efficiency/ (keyed by structure and simulator settings), so a rerun
only retrains. Writes benchmarks/results/campaign_efficiency.{json,md,png}.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / "runs" / "campaign_efficiency"
# Two systems the bundled checkpoint saw, two it never saw (all their elements it did see,
# in other systems: the checkpoint refuses unseen elements).
SEEN = ("Li-Mn-O", "Li-Ni-O")
HELD_OUT = ("Na-Co-O", "Mg-Fe-O")
POOL_SEED = 2026
# The partial-substitution extension: parents up to 16 sites (substituted prototypes), up to
# 24 orderings each, products up to 20 sites; the default 8/12 yields some 60 per system,
# mostly binaries already in the pool.
PARTIAL = {"max_parent_sites": 16, "max_orderings": 24, "max_sites": 20}
log = logging.getLogger("campaign_efficiency")


def _campaign(system: str, args):
    from discovery.config import CampaignConfig

    return CampaignConfig.model_validate(
        {
            "name": f"bench-{system}",
            "chemical_systems": [system],
            "seed": POOL_SEED,
            "generation": {
                "substitution": {"budget": args.substitution, "threshold": 0.001},
                "random": {"budget": args.random, "max_formula_units": 2},
                "compositions": {"max_atoms": 7, "charge_balanced": True},
                "min_distance": 1.0,
                "max_sites": 12,
            },
            "simulator": {
                "name": "chgnet",
                "fmax": 0.1,
                "max_steps": 150,
                "formation_energy": "mp2020",
            },
        }
    )


# ---------------------------------------------------------------- pool and oracle labels


@dataclass
class Pool:
    """One system's candidates and references with the simulator's labels."""

    system: str
    initial: list  # unrelaxed structures (what the screen sees)
    relaxed: list  # relaxed structures (None where the relaxation failed)
    e_form: np.ndarray  # relaxed formation energy per atom (NaN = failed)
    e_form_single: np.ndarray  # teacher single point on the unrelaxed structure
    is_reference: np.ndarray
    e_hull: np.ndarray = field(default_factory=lambda: np.zeros(0))  # against the oracle hull
    from_partial: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # SAPS-made


def _key(structure, settings_key: str) -> str:
    text = json.dumps(structure.as_dict(), sort_keys=True, default=str) + settings_key
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _formation(structure, energy_per_atom: float, scheme: str) -> float:
    from discovery.domain.convex_hull import formation_energy_per_atom
    from discovery.domain.mp2020_corrections import mp_formation_energy_per_atom
    from discovery.domain.mp_elemental_references import mp_chemical_potentials

    if scheme == "mp2020_native":
        return formation_energy_per_atom(
            structure.composition, energy_per_atom, mp_chemical_potentials()
        )
    if scheme == "mp2020":
        value = mp_formation_energy_per_atom(structure, energy_per_atom)
        return float("nan") if value is None else value
    raise ValueError(f"the benchmark takes MP-referenced schemes, not {scheme!r}")


def _pool_structures(system: str, args, path: Path, cache: dict) -> tuple[list, int]:
    """The pool (generated once, then read from the cache file) and its reference count."""
    from pymatgen.core import Structure

    from discovery.domain.generation.dedup import Deduplicator
    from discovery.domain.known.bundled import bundled_phases
    from discovery.domain.reference_structures import reference_records
    from discovery.engine.candidate_generation import generate_candidates

    wanted = [args.substitution, args.random]
    if cache.get("generation") == wanted:
        structures = [Structure.from_dict(d) for d in cache["pool"]]
    else:
        config = _campaign(system, args)
        rng = np.random.default_rng([POOL_SEED, sum(map(ord, system))])
        records, _ = generate_candidates(config, rng, Deduplicator())
        refs = [r.structure for r in reference_records(config.elements, [])]
        refs += [p.structure for p in bundled_phases(config.elements)]
        structures = refs + [r.structure for r in records]
        cache.update(generation=wanted, pool=[s.as_dict() for s in structures], n_refs=len(refs))
        cache.pop("partial", None)
        _write_cache(path, cache)
    return structures + _partial_structures(system, args, path, cache, structures), cache["n_refs"]


def _partial_structures(system: str, args, path: Path, cache: dict, pool: list) -> list:
    """Symmetry-aware partial substitutions (SAPS, off in the campaign default) of the
    system's substituted prototypes, new against `pool`: the generator that yields most of the
    ternary candidates. Drawn with a seed of their own, so the base pool and its cached
    labels stay as they were."""
    from pymatgen.core import Structure

    from discovery.domain.generation.dedup import Deduplicator
    from discovery.engine.candidate_generation import generate_candidates

    if not args.partial:
        return []
    wanted = [args.partial, *PARTIAL.values()]
    if cache.get("partial") == wanted:
        return [Structure.from_dict(d) for d in cache["partial_pool"]]
    base = _campaign(system, args)
    generation = base.generation.model_copy(
        update={
            "substitution": base.generation.substitution.model_copy(update={"enabled": False}),
            "random": base.generation.random.model_copy(update={"enabled": False}),
            "partial": base.generation.partial.model_copy(
                update={
                    "enabled": True,
                    "budget": args.partial,
                    "max_parent_sites": PARTIAL["max_parent_sites"],
                    "max_orderings": PARTIAL["max_orderings"],
                }
            ),
            "max_sites": PARTIAL["max_sites"],
        }
    )
    config = base.model_copy(update={"generation": generation})
    seen = Deduplicator()
    for s in pool:
        seen.add(s)
    rng = np.random.default_rng([POOL_SEED, sum(map(ord, system)), 1])
    records, _ = generate_candidates(config, rng, seen)
    structures = [r.structure for r in records]
    cache.update(partial=wanted, partial_pool=[s.as_dict() for s in structures])
    _write_cache(path, cache)
    return structures


def build_pool(system: str, args) -> Pool:
    """Generate the pool, relax what the cache lacks, and label everything."""
    from discovery.config import ExecutorConfig
    from discovery.engine.executors import cached_simulator, executor_for, spec_for

    config = _campaign(system, args)
    path = CACHE / f"{system}.json.gz"
    cache: dict = json.loads(gzip.open(path, "rt").read()) if path.exists() else {}
    structures, n_refs = _pool_structures(system, args, path, cache)
    spec = spec_for(config.simulator, relax_cell=True)
    settings_key = spec.settings_key()
    labels = cache.setdefault("labels", {})
    keys = [_key(s, settings_key) for s in structures]
    todo = [i for i, k in enumerate(keys) if k not in labels]
    log.info("%s: %d structures (%d references), %d to label", system, len(keys), n_refs, len(todo))
    if todo:
        simulator = cached_simulator(spec)
        single = {i: simulator.single_point(structures[i]) for i in todo}
        executor = executor_for(ExecutorConfig(kind="pool", workers=args.workers))
        try:
            for done, (j, result) in enumerate(
                executor.relax_as_completed(spec, [structures[i] for i in todo]), 1
            ):
                i = todo[j]
                labels[keys[i]] = {
                    "ok": bool(result.ok),
                    "energy_per_atom": result.energy_per_atom if result.ok else None,
                    "final": result.structure.as_dict() if result.ok else None,
                    "single": single[i].energy_per_atom if single[i].ok else None,
                }
                if done % 25 == 0:
                    log.info("%s: relaxed %d of %d", system, done, len(todo))
                    _write_cache(path, cache)
        finally:
            executor.close()
        _write_cache(path, cache)
    pool = _labelled(system, structures, [labels[k] for k in keys], n_refs, config)
    n_partial = len(cache["partial_pool"]) if args.partial else 0
    pool.from_partial = np.arange(len(structures)) >= len(structures) - n_partial
    return pool


def _write_cache(path: Path, cache: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt") as fh:
        json.dump(cache, fh)
    os.replace(tmp, path)


def _labelled(system, structures, rows, n_refs, config) -> Pool:
    from pymatgen.core import Structure

    from discovery.domain.convex_hull import FormationHull

    scheme = config.simulator.energy_scheme
    relaxed, e_form, e_single = [], [], []
    for s, row in zip(structures, rows, strict=True):
        final = Structure.from_dict(row["final"]) if row["ok"] else None
        relaxed.append(final)
        e_form.append(_formation(final, row["energy_per_atom"], scheme) if final else np.nan)
        e_single.append(
            _formation(s, row["single"], scheme) if row["single"] is not None else np.nan
        )
    e_form_arr = np.array(e_form, dtype=float)
    # A relaxation that "succeeded" far below any sane energy is a failure (as the campaign's
    # guards would flag it); it must not define the hull.
    e_form_arr[np.abs(e_form_arr) > 5.0] = np.nan
    is_ref = np.arange(len(structures)) < n_refs
    pool = Pool(system, structures, relaxed, e_form_arr, np.array(e_single), is_ref)
    ok = [i for i in range(len(structures)) if np.isfinite(e_form_arr[i])]
    hull = FormationHull(
        config.elements, [(i, structures[i].composition, e_form_arr[i]) for i in ok]
    )
    pool.e_hull = np.full(len(structures), np.nan)
    for i in ok:
        pool.e_hull[i] = hull.point(i).e_above_hull
    return pool


# ---------------------------------------------------------------- campaigns on the pool


def _known_hull(pool: Pool, known: list[int], elements):
    from discovery.domain.convex_hull import FormationHull

    return FormationHull(
        elements,
        [
            (i, pool.initial[i].composition, pool.e_form[i])
            for i in known
            if np.isfinite(pool.e_form[i])
        ],
    )


def _training_data(pool: Pool, known: list[int]):
    structures, targets, n_entries = [], [], 0
    for i in known:
        if not np.isfinite(pool.e_form[i]):
            continue
        n_entries += 1
        structures.append(pool.initial[i])
        targets.append(float(pool.e_form[i]))
        if pool.relaxed[i] is not None and not pool.is_reference[i]:
            structures.append(pool.relaxed[i])
            targets.append(float(pool.e_form[i]))
    return structures, targets, n_entries


def _read_replay(checkpoint: Path) -> list:
    from discovery.engine.replay_set import read_replay, replay_path

    path = replay_path(checkpoint)
    return read_replay(path) if path.is_file() else []


def run_arm(pool: Pool, arm: str, seed: int, args, cache) -> dict:
    """One campaign on the pool; per round: picks, stable found, the model's error on them."""
    import torch

    from discovery.domain.acquisition import select
    from discovery.domain.records import ScoredCandidate
    from discovery.domain.synthetic_share import balanced_sample, synthetic_count
    from discovery.engine.replay_set import with_replay
    from models import Ensemble, GNNSettings, TrainSettings

    torch.set_num_threads(1)
    elements = _campaign(pool.system, args).elements
    rng = np.random.default_rng([seed, 11])
    known = [i for i in range(len(pool.initial)) if pool.is_reference[i]]
    open_ids = [i for i in range(len(pool.initial)) if not pool.is_reference[i]]
    kind, _, acq = arm.partition("-")
    train = TrainSettings(epochs=args.epochs, lr=3e-3, batch_size=32)
    model = None
    if kind == "pretrained":
        model = Ensemble.load(args.checkpoint, device="cpu")
    replay = (
        cache.setdefault("replay", _read_replay(args.checkpoint)) if kind == "pretrained" else []
    )
    rounds = []
    for r in range(args.rounds):
        started = time.perf_counter()
        hull = _known_hull(pool, known, elements)
        pred = None
        if kind in ("random",) or (kind == "scratch" and model is None):
            picked = [
                int(i)
                for i in rng.choice(open_ids, size=min(args.batch, len(open_ids)), replace=False)
            ]
        else:
            if kind == "teacher":
                pred = {i: pool.e_form_single[i] for i in open_ids}
                std = dict.fromkeys(open_ids, 0.0)
                strategy = "greedy"
            else:
                preds = model.predict(
                    [pool.initial[i] for i in open_ids], graph_cache=cache["graphs"]
                )
                pred = {i: p.mean for i, p in zip(open_ids, preds, strict=True)}
                std = {i: p.std for i, p in zip(open_ids, preds, strict=True)}
                strategy = acq
            scored = [
                ScoredCandidate(
                    i,
                    pool.initial[i].composition.chemical_system,
                    hull.distance(pool.initial[i].composition, pred[i])
                    if np.isfinite(pred[i])
                    else float("inf"),
                    std[i],
                )
                for i in open_ids
            ]
            picked = select(scored, args.batch, strategy, rng, 1.0, args.max_per_chemsys)
        stable = [
            i for i in picked if np.isfinite(pool.e_hull[i]) and pool.e_hull[i] <= args.threshold
        ]
        errors = [
            abs(pred[i] - pool.e_form[i])
            for i in picked
            if pred is not None and np.isfinite(pool.e_form[i]) and np.isfinite(pred[i])
        ]
        known += picked
        open_ids = [i for i in open_ids if i not in set(picked)]
        if kind in ("scratch", "pretrained") and r < args.rounds - 1:
            structures, targets, n_real = _training_data(pool, known)
            weights = None
            if kind == "pretrained" and replay:
                # What the learn stage does (engine.stages.learn): a seeded, chemistry-balanced
                # replay sample shrinking as real entries grow, weighted below them.
                n = min(synthetic_count(args.replay_size, args.replay_halving, n_real), len(replay))
                keep = balanced_sample([e.chemsys for e in replay], n, [seed, r])
                structures, targets, weights = with_replay(
                    structures, targets, [replay[j] for j in keep], args.replay_weight
                )
            fresh = Ensemble(
                GNNSettings(cutoff=5.0, hidden=48, layers=3) if model is None else model.settings,
                n_members=3,
                seed=seed * 1000 + r,
                device="cpu",
            )
            fit_kw = {"weights": weights} if weights is not None else {}
            fresh.fit(
                structures,
                targets,
                train,
                init_from=model if kind == "pretrained" else None,
                graph_cache=cache["graphs"],
                **fit_kw,
            )
            model = fresh
        rounds.append(
            {
                "round": r,
                "picked": len(picked),
                "stable": len(stable),
                "model_mae": float(np.mean(errors)) if errors else None,
                "wall_s": time.perf_counter() - started,
            }
        )
    found = np.cumsum([x["stable"] for x in rounds])
    return {
        "system": pool.system,
        "arm": arm,
        "seed": seed,
        "rounds": rounds,
        "stable_total": int(found[-1]),
        "validations": int(sum(x["picked"] for x in rounds)),
    }


def _system_runs(system: str, args) -> tuple[dict, list[dict]]:
    from models.graph_cache import MemoryGraphCache

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    pool = build_pool(system, args)
    stable = (pool.e_hull <= args.threshold) & ~pool.is_reference
    n_stable, n_cand = int(stable.sum()), int(np.sum(~pool.is_reference))
    ternary = np.array([len(s.composition.elements) >= 3 for s in pool.initial])
    summary = {
        "system": system,
        "held_out": system in HELD_OUT,
        "candidates": n_cand,
        "references": int(pool.is_reference.sum()),
        "failed": int(np.sum(~np.isfinite(pool.e_form) & ~pool.is_reference)),
        "stable_in_pool": n_stable,
        "prevalence": n_stable / n_cand if n_cand else 0.0,
        "partial_candidates": int(pool.from_partial.sum()),
        "stable_from_partial": int((stable & pool.from_partial).sum()),
        "ternary_candidates": int((ternary & ~pool.is_reference).sum()),
        "stable_ternary": int((stable & ternary).sum()),
    }
    log.info("%s: %s", system, summary)
    cache = {"graphs": MemoryGraphCache()}
    runs = []
    for arm in args.arms:
        for seed in range(args.seeds):
            t = time.perf_counter()
            runs.append(run_arm(pool, arm, seed, args, cache))
            log.info(
                "%s %s seed %d: %d stable in %d (%.0f s)",
                system,
                arm,
                seed,
                runs[-1]["stable_total"],
                runs[-1]["validations"],
                time.perf_counter() - t,
            )
    return summary, runs


# ---------------------------------------------------------------- report


def _table(summaries: list[dict], runs: list[dict], args) -> tuple[str, dict]:
    by = {}
    for run in runs:
        by.setdefault((run["system"], run["arm"]), []).append(run)
    agg: dict = {}
    lines = [
        "| system | pretrained on it | pool (stable) | " + " | ".join(args.arms) + " |",
        "|---|---|---|" + "---|" * len(args.arms),
    ]
    for s in summaries:
        cells = []
        for arm in args.arms:
            rs = by.get((s["system"], arm), [])
            total = [r["stable_total"] / r["validations"] for r in rs]
            r0 = [r["rounds"][0]["stable"] / max(r["rounds"][0]["picked"], 1) for r in rs]
            agg[(s["system"], arm)] = {
                "stable_per_validation": float(np.mean(total)) if total else None,
                "stable_per_validation_std": float(np.std(total)) if total else None,
                "round0_hit_rate": float(np.mean(r0)) if r0 else None,
                "stable_mean": float(np.mean([r["stable_total"] for r in rs])) if rs else None,
                "model_mae_per_round": [
                    _mean_or_none([r["rounds"][k]["model_mae"] for r in rs])
                    for k in range(args.rounds)
                ],
            }
            a = agg[(s["system"], arm)]
            cells.append(f"{a['stable_mean']:.1f} ({a['round0_hit_rate']:.2f})")
        lines.append(
            f"| {s['system']} | {'no' if s['held_out'] else 'yes'} | "
            f"{s['candidates']} ({s['stable_in_pool']}) | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines), agg


def _ratio(a, b):
    return a / b if a is not None and b else None


def _fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def _headline(summaries: list[dict], agg: dict, args) -> tuple[str, list[dict]]:
    """Against the targets: pretrained over scratch (same acquisition) in stable found per
    validation, its round-0 hit rate over the pool's prevalence (what random picks expect),
    and two bounds set by the pool: a perfect ranking over random, and over scratch (the
    headroom: where it is below 2x, no ranking can double what scratch found)."""
    budget = args.rounds * args.batch
    rows = []
    acqs = sorted({a.split("-", 1)[1] for a in args.arms if a.startswith("pretrained-")})
    for s in summaries:
        ceiling = min(s["stable_in_pool"], budget)
        random_mean = (agg.get((s["system"], "random")) or {}).get("stable_mean")
        row = {
            "system": s["system"],
            "held_out": s["held_out"],
            "ceiling_over_random": _ratio(ceiling, random_mean),
        }
        for acq in acqs:
            pre = agg.get((s["system"], f"pretrained-{acq}")) or {}
            scr = agg.get((s["system"], f"scratch-{acq}")) or {}
            row[f"pretrained_over_scratch_{acq}"] = _ratio(
                pre.get("stable_per_validation"), scr.get("stable_per_validation")
            )
            row[f"ceiling_over_scratch_{acq}"] = _ratio(ceiling, scr.get("stable_mean"))
            row[f"round0_over_random_{acq}"] = _ratio(pre.get("round0_hit_rate"), s["prevalence"])
        rows.append(row)
    head = "| system | held out | ceiling / random | " + " | ".join(
        f"pretrained / scratch ({a}) | ceiling / scratch ({a}) | round 0 / random ({a})"
        for a in acqs
    )
    lines = [head + " |", "|---|---|---|" + "---|---|---|" * len(acqs)]
    for row in rows:
        cells = [
            f"{_fmt(row['pretrained_over_scratch_' + a])}x | "
            f"{_fmt(row['ceiling_over_scratch_' + a])}x | "
            f"{_fmt(row['round0_over_random_' + a])}x"
            for a in acqs
        ]
        lines.append(
            f"| {row['system']} | {'yes' if row['held_out'] else 'no'} | "
            f"{_fmt(row['ceiling_over_random'])}x | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines), rows


def _mean_or_none(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _plot(summaries, runs, args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summaries), figsize=(4 * len(summaries), 3.4), squeeze=False)
    for ax, s in zip(axes[0], summaries, strict=True):
        for arm in args.arms:
            rs = [r for r in runs if r["system"] == s["system"] and r["arm"] == arm]
            curves = np.array([np.cumsum([x["stable"] for x in r["rounds"]]) for r in rs])
            x = np.arange(1, args.rounds + 1) * args.batch
            ax.plot(x, curves.mean(axis=0), marker="o", label=arm)
        ax.set_title(f"{s['system']}{' (held out)' if s['held_out'] else ''}")
        ax.set_xlabel("validations")
    axes[0][0].set_ylabel("stable found (mean over seeds)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", nargs="+", default=[*SEEN, *HELD_OUT])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--max-per-chemsys", type=int, default=5)
    parser.add_argument("--substitution", type=int, default=60)
    parser.add_argument("--random", type=int, default=80)
    parser.add_argument(
        "--partial",
        type=int,
        default=150,
        help="partial substitutions (SAPS) added to each pool; 0 = the generators' defaults",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2, help="systems run side by side")
    parser.add_argument(
        "--arms",
        nargs="+",
        default=[
            "random",
            "scratch-lcb",
            "scratch-greedy",
            "pretrained-lcb",
            "pretrained-greedy",
            "teacher",
        ],
    )
    parser.add_argument(
        "--report", action="store_true", help="re-make the tables from the recorded JSON"
    )
    parser.add_argument("--label-only", action="store_true", help="build the pools and stop")
    parser.add_argument("--replay-size", type=int, default=256)
    parser.add_argument("--replay-halving", type=int, default=32)
    parser.add_argument("--replay-weight", type=float, default=0.25)
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=ROOT / "discovery" / "data" / "pretrained" / "oxides-v1.pt",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = time.perf_counter()
    # Label pools one system at a time (the relaxations use every worker), then run the
    # campaigns of different systems side by side.
    for system in [] if args.report else args.systems:
        build_pool(system, args)
    if args.label_only:
        return
    if args.report:
        # Re-make the tables and the plot from the recorded runs (no campaign is rerun).
        recorded = json.loads((RESULTS / "campaign_efficiency.json").read_text())
        summaries, runs, wall = recorded["systems"], recorded["runs"], recorded["wall_s"]
    else:
        with ProcessPoolExecutor(args.processes) as pool:
            results = list(pool.map(_system_runs, args.systems, [args] * len(args.systems)))
        summaries = [s for s, _ in results]
        runs = [r for _, rs in results for r in rs]
        wall = time.perf_counter() - started
    table, agg = _table(summaries, runs, args)
    headline, rows = _headline(summaries, agg, args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    _plot(summaries, runs, args, RESULTS / "campaign_efficiency.png")
    settings = {k: v for k, v in vars(args).items() if k not in ("report", "label_only")}
    if args.report:
        # The runs were made with the recorded settings, not with this call's defaults.
        settings = recorded["settings"]
    out = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "wall_s": wall,
        "systems": summaries,
        "aggregate": {f"{s}|{a}": v for (s, a), v in agg.items()},
        "headline": rows,
        "runs": runs,
    }
    (RESULTS / "campaign_efficiency.json").write_text(json.dumps(out, indent=1))
    (RESULTS / "campaign_efficiency.md").write_text(
        "Cells: stable found in the whole campaign, mean over seeds (round-0 hit rate).\n\n"
        + table
        + "\n\nAgainst the targets (ratios of means over seeds):\n\n"
        + headline
        + "\n"
    )
    log.info("\n%s\n\n%s", table, headline)


if __name__ == "__main__":
    main()
