"""Candidate generation: generator throughput, de-duplication at scale, diversity; one run.

    python benchmarks/generation.py [--n 10000] [--originals 300] [--naive-pairs 600]
                                    [--seconds 20] [--seed 0]

De-duplication: `originals` distinct structures (pyxtal random crystals of a few formulas
shared by many polymorphs, so that formula buckets are crowded, plus substituted prototypes),
certified pairwise distinct by the matcher, and `n - originals` planted duplicates made by
chaining supercells, unimodular basis changes, permuted sites, origin shifts, volume scaling
and displacements below the matcher's tolerance. The bucketed `Deduplicator` reads them in a
shuffled order; its wall time is compared with naive all-pairs StructureMatcher, whose cost is
the mean time of `naive-pairs` random pairs timed in this run times n(n-1)/2 pairs.

Generators: candidates per second on one core (this process is pinned to one CPU), over
`seconds` each, on the quickstart chemistry (Li-Mn-O), partial substitution switched on.
Diversity: distinct chemical systems, space groups and parents among each round's generated
candidates for three rounds; with `--campaign DIR`, also among the candidates that campaign
validated, per round.

Writes benchmarks/results/generation.json and generation.png.
"""

from __future__ import annotations

import os

# One core: set before numpy loads its BLAS.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from pymatgen.analysis.structure_matcher import StructureMatcher  # noqa: E402
from pymatgen.core import Composition, Lattice, Structure  # noqa: E402

from discovery.config import CampaignConfig  # noqa: E402
from discovery.domain.generation.dedup import (  # noqa: E402
    KEY_SYMPREC,
    Deduplicator,
    bucket_key,
    reduced_structure,
)
from discovery.domain.generation.random_search import RandomSearchGenerator  # noqa: E402
from discovery.domain.generation.substitution import enumerate_substitutions  # noqa: E402
from discovery.engine.candidate_generation import build_generators, generate_candidates  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
log = logging.getLogger("benchmarks.generation")

# Few formulas, many polymorphs each: the hard case for formula-only buckets.
RANDOM_FORMULAS = ["LiMnO2", "Li2MnO3", "MnO2", "Li2O", "CuAu", "Cu3Au", "NaCl", "TiO2"]
SUB_SYSTEMS = [("Li", "Mn", "O"), ("Na", "K", "Cl"), ("Cu", "Au", "Pd"), ("Mg", "Al", "O")]
MAX_DUP_SITES = 48


def _random_originals(n: int, rng: np.random.Generator) -> list[Structure]:
    comps = [Composition(f) for f in RANDOM_FORMULAS]
    gen = RandomSearchGenerator(comps, 2, (2, 230), 16, 8)
    out = []
    for rec in gen.generate(rng):
        out.append(rec.structure)
        if len(out) >= n:
            break
    return out


def _substituted_originals() -> list[Structure]:
    out = []
    for elements in SUB_SYSTEMS:
        out += [rec.structure for _, rec in enumerate_substitutions(elements, 0.001)]
    return out


def build_originals(n: int, rng: np.random.Generator) -> list[Structure]:
    """`n` structures that are distinct with a margin: a matcher with twice the site
    tolerance and looser lattice tolerances pairs none of them (checked exhaustively within
    each coarse bucket, outside of which no matcher with primitive_cell=True matches). Without
    the margin, a perturbed copy of one original can lie within tolerance of a neighbouring
    original, and the matcher (not transitive) would merge them whatever the bucketing."""
    pool = _substituted_originals()
    pool = [pool[i] for i in rng.permutation(len(pool))][: n // 3]
    pool += _random_originals(n - len(pool) + n // 10, rng)  # spare for ones dropped below
    matcher = StructureMatcher(
        ltol=0.4, stol=0.6, angle_tol=10, primitive_cell=True, scale=True, attempt_supercell=False
    )
    kept: list[Structure] = []
    by_coarse: dict[str, list[Structure]] = {}
    for s in pool:
        s = reduced_structure(s)
        coarse = bucket_key(s, s).coarse
        if any(matcher.fit(s, o, skip_structure_reduction=True) for o in by_coarse.get(coarse, [])):
            continue
        by_coarse.setdefault(coarse, []).append(s)
        kept.append(s)
        if len(kept) == n:
            break
    return kept


def _unimodular(rng: np.random.Generator) -> np.ndarray:
    """A random integer basis change of determinant 1 (a product of shears)."""
    m = np.eye(3, dtype=int)
    for _ in range(2):
        i, j = rng.choice(3, size=2, replace=False)
        shear = np.eye(3, dtype=int)
        shear[i, j] = int(rng.choice([-1, 1]))
        m = m @ shear
    return m


def plant_duplicate(original: Structure, rng: np.random.Generator) -> tuple[Structure, str]:
    """A copy the matcher must call equal, and the transformations applied."""
    s = original.copy()
    kinds = []
    if rng.random() < 0.5:
        for _ in range(5):
            diag = [int(x) for x in rng.integers(1, 3, size=3)]
            if 1 < np.prod(diag) and len(s) * np.prod(diag) <= MAX_DUP_SITES:
                s.make_supercell(diag)
                kinds.append("supercell")
                break
    if rng.random() < 0.5:
        s = _basis_change(s, _unimodular(rng))
        kinds.append("basis")
    if rng.random() < 0.7:
        order = rng.permutation(len(s))
        s = Structure.from_sites([s[int(i)] for i in order])
        kinds.append("permuted")
    if rng.random() < 0.7:
        s.translate_sites(list(range(len(s))), rng.random(3), frac_coords=True)
        kinds.append("shift")
    if rng.random() < 0.5:
        s.scale_lattice(s.volume * float(rng.uniform(0.85, 1.15)))
        kinds.append("volume")
    if rng.random() < 0.6:
        # Per-site displacements of at most 0.08 Å (0.04 Å in a supercell): far below the
        # matcher's site tolerance (0.3 of the mean spacing, ~0.6 Å) and well below the
        # 0.25 Å within which the primitive cell of a supercell must still be found.
        largest = 0.04 if "supercell" in kinds else 0.08
        directions = rng.normal(size=(len(s), 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        for i, d in enumerate(directions):
            s.translate_sites([i], d * float(rng.uniform(0, largest)), frac_coords=False)
        kinds.append("displaced")
    if not kinds:
        kinds.append("shift")
        s.translate_sites(list(range(len(s))), rng.random(3), frac_coords=True)
    return s, "+".join(kinds)


def _basis_change(s: Structure, m: np.ndarray) -> Structure:
    lattice = Lattice(m @ s.lattice.matrix)
    return Structure(
        lattice, s.species, s.cart_coords, coords_are_cartesian=True, to_unit_cell=True
    )


def dedup_benchmark(args, rng: np.random.Generator) -> dict:
    t0 = time.perf_counter()
    originals = build_originals(args.originals, rng)
    structures = [(s, i, "original") for i, s in enumerate(originals)]
    for _ in range(args.n - len(originals)):
        i = int(rng.integers(len(originals)))
        dup, kinds = plant_duplicate(originals[i], rng)
        structures.append((dup, i, kinds))
    order = rng.permutation(len(structures))
    structures = [structures[i] for i in order]
    build_s = time.perf_counter() - t0
    log.info(
        "%d structures (%d originals) built in %.0f s", len(structures), len(originals), build_s
    )

    matcher = StructureMatcher(primitive_cell=True, scale=True, attempt_supercell=False)

    def run(fallback: bool, symprec: float = KEY_SYMPREC, items: list | None = None) -> dict:
        """The first structure of each group to arrive is necessarily new; every later one
        must merge into its own group. A later one kept as new is a miss, unless the matcher
        itself (no keys, against every kept member of the group) also says it is no copy:
        then the transformation took it past the matcher's tolerance and it is not counted."""
        items = structures if items is None else items
        dedup = Deduplicator(symmetry_fallback=fallback, symprec=symprec)
        group_of: dict[int, int] = {}  # id of a kept structure -> its original
        kept_by_group: dict[int, list[Structure]] = {}
        merged = false_merges = missed = not_copies = 0
        missed_kinds: Counter = Counter()
        not_copy_kinds: Counter = Counter()
        kinds_of = {id(x): k for x, _, k in items}
        t = time.perf_counter()
        for s, group, _kinds in items:
            match = dedup.match_or_add(s)
            if match is None:
                group_of[id(s)] = group  # match_or_add returns the very object stored
                kept_by_group.setdefault(group, []).append(s)
            elif group_of[id(match)] != group:
                false_merges += 1
            else:
                merged += 1
        wall = time.perf_counter() - t
        for kept in kept_by_group.values():
            for s in kept[1:]:
                if any(matcher.fit(s, other) for other in kept if other is not s):
                    missed += 1
                    missed_kinds[kinds_of[id(s)]] += 1
                else:
                    not_copies += 1
                    not_copy_kinds[kinds_of[id(s)]] += 1
        planted = len(items) - len(kept_by_group) - not_copies
        return {
            "wall_s": round(wall, 2),
            "fits": dedup.fits,
            "unique": len(dedup),
            "groups": len(kept_by_group),
            "planted": planted,
            "merged": merged,
            "missed": missed,
            "planted_recall": merged / planted,
            "false_merges": false_merges,
            "not_copies_by_the_matcher": not_copies,
            "missed_by_transform": dict(missed_kinds.most_common(10)),
            "not_copies_by_transform": dict(not_copy_kinds.most_common(10)),
        }

    bucketed = run(fallback=True)
    log.info("bucketed: %s", bucketed)
    exact_only = run(fallback=False)
    log.info("space-group bucket only (no fallback): %s", exact_only)
    # How the symmetry tolerance trades first-bucket hits against work, on a subset: the
    # fallback keeps recall whatever the value, so it only moves the cost.
    subset = structures[: args.scan_n]
    scan = []
    for symprec in (0.01, 0.05, 0.1, 0.2, 0.3):
        only = run(fallback=False, symprec=symprec, items=subset)
        full = run(fallback=True, symprec=symprec, items=subset)
        scan.append(
            {
                "symprec": symprec,
                "first_bucket_recall": only["planted_recall"],
                "wall_s": full["wall_s"],
                "fits": full["fits"],
                "recall": full["planted_recall"],
                "false_merges": full["false_merges"],
            }
        )
        log.info("symprec scan: %s", scan[-1])

    # Naive all-pairs: time random pairs exactly as StructureMatcher is called without keys.
    n = len(structures)
    times = []
    same_formula = 0
    for _ in range(args.naive_pairs):
        a, b = rng.choice(n, size=2, replace=False)
        sa, sb = structures[int(a)][0], structures[int(b)][0]
        same_formula += sa.composition.reduced_formula == sb.composition.reduced_formula
        t = time.perf_counter()
        matcher.fit(sa, sb)
        times.append(time.perf_counter() - t)
    pairs = n * (n - 1) // 2
    per_pair = float(np.mean(times))
    naive_s = per_pair * pairs
    return {
        "structures": n,
        "originals": len(originals),
        "build_s": round(build_s, 1),
        "matcher": {"ltol": 0.2, "stol": 0.3, "angle_tol": 5, "primitive_cell": True},
        "bucketed": bucketed,
        "space_group_bucket_only": exact_only,
        "symprec_scan": {"structures": len(subset), "runs": scan},
        "naive": {
            "pairs_timed": len(times),
            "same_formula_share": same_formula / len(times),
            "mean_fit_s": per_pair,
            "pairs": pairs,
            "extrapolated_s": round(naive_s, 1),
        },
        "ratio": round(naive_s / bucketed["wall_s"], 1),
        "planted_recall": bucketed["planted_recall"],
        "false_merges": bucketed["false_merges"],
    }


def generator_throughput(seconds: float, rng: np.random.Generator) -> dict:
    config = CampaignConfig(
        name="bench", chemical_systems=["Li-Mn-O"], generation={"partial": {"enabled": True}}
    )
    out = {}
    for generator, _budget in build_generators(config):
        count = 0
        t = time.perf_counter()
        for _ in generator.generate(rng):
            count += 1
            if time.perf_counter() - t > seconds:
                break
        wall = time.perf_counter() - t
        # several generators of one kind (one per chemical system) would add up here
        entry = out.setdefault(generator.name, {"candidates": 0, "wall_s": 0.0})
        entry["candidates"] += count
        entry["wall_s"] += wall
    for entry in out.values():
        entry["candidates_per_s"] = round(entry["candidates"] / entry["wall_s"], 2)
        entry["wall_s"] = round(entry["wall_s"], 2)
    return out


def diversity(rounds: int, seed: int) -> list[dict]:
    """Distinct chemical systems, space groups and parents per round among generated (not
    validated: that needs a campaign) candidates of the quickstart chemistry."""
    from discovery.domain.generation.symmetry import space_group_number

    config = CampaignConfig(
        name="bench",
        chemical_systems=["Li-Mn-O"],
        seed=seed,
        generation={"partial": {"enabled": True}},
    )
    seen = Deduplicator()
    out = []
    for r in range(rounds):
        records, stats = generate_candidates(config, np.random.default_rng([seed, r, 1]), seen)
        out.append(
            {
                "round": r,
                "candidates": len(records),
                "by_generator": dict(Counter(rec.origin for rec in records)),
                "chemical_systems": len(
                    {rec.structure.composition.chemical_system for rec in records}
                ),
                "space_groups": len({space_group_number(rec.structure) for rec in records}),
                "parents": len({rec.parent for rec in records if rec.parent}),
                "rejected": dict(stats.rejected),
            }
        )
    return out


def validated_diversity(campaign_dir: Path) -> list[dict]:
    """The same counts among the candidates a finished campaign validated, per round."""
    from sqlalchemy import select

    from discovery.engine.campaign_directory import STORE_FILE
    from discovery.store import Calculation, Candidate, Database

    db = Database(f"sqlite:///{(campaign_dir / STORE_FILE).resolve()}", create=False)
    per_round: dict[int, list[Candidate]] = {}
    with db.session() as session:
        rows = session.execute(
            select(Calculation.round_index, Candidate)
            .join(Candidate, Candidate.id == Calculation.candidate_id)
            .where(Calculation.ok.is_(True), Candidate.is_reference.is_(False))
        ).all()
        for round_index, cand in rows:
            per_round.setdefault(round_index, []).append(
                (cand.chemsys, cand.spacegroup, cand.parent or cand.origin)
            )
    db.dispose()
    return [
        {
            "round": r,
            "validated": len(items),
            "chemical_systems": len({c for c, _, _ in items}),
            "space_groups": len({s for _, s, _ in items}),
            "parents": len({p for _, _, p in items}),
        }
        for r, items in sorted(per_round.items())
    ]


def plot(result: dict, path: Path) -> None:
    dedup = result["dedup"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    labels = ["bucketed", "naive all-pairs\n(extrapolated)"]
    values = [dedup["bucketed"]["wall_s"], dedup["naive"]["extrapolated_s"]]
    ax1.bar(labels, values, color=["tab:green", "tab:gray"])
    ax1.set_yscale("log")
    ax1.set_ylabel("wall time (s)")
    ax1.set_title(
        f"de-duplicating {dedup['structures']:,} structures: {dedup['ratio']:.0f}x, "
        f"recall {dedup['planted_recall']:.1%}, false merges {dedup['false_merges']}",
        fontsize=8,
    )
    for i, v in enumerate(values):
        ax1.text(i, v, f"{v:,.0f} s", ha="center", va="bottom", fontsize=8)
    gens = result["generators"]
    names = list(gens)
    ax2.bar(names, [gens[n]["candidates_per_s"] for n in names], color="tab:blue")
    ax2.set_yscale("log")
    ax2.set_ylabel("candidates per second (one core)")
    ax2.set_title("generator throughput, Li-Mn-O", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--originals", type=int, default=300)
    parser.add_argument("--naive-pairs", type=int, default=600)
    parser.add_argument("--scan-n", type=int, default=2000, help="subset for the symprec scan")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-generators", action="store_true")
    parser.add_argument(
        "--campaign", type=Path, help="a campaign dir: diversity among its validated candidates"
    )
    parser.add_argument(
        "--campaign-only",
        action="store_true",
        help="only add --campaign's validated diversity to the existing results JSON",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    warnings.simplefilter("ignore")
    if args.campaign_only:
        path = RESULTS / "generation.json"
        result = json.loads(path.read_text())
        result["validated_diversity"] = {
            "campaign": args.campaign.name,
            "rounds": validated_diversity(args.campaign),
        }
        path.write_text(json.dumps(result, indent=2) + "\n")
        log.info("validated diversity: %s", result["validated_diversity"])
        return
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rng = np.random.default_rng(args.seed)
    result: dict = {
        "machine": {"platform": platform.platform(), "cpus_used": 1},
        "versions": {p: version(p) for p in ("pymatgen", "moyopy", "pyxtal", "smact")},
    }
    result["dedup"] = dedup_benchmark(args, rng)
    if not args.skip_generators:
        result["generators"] = generator_throughput(args.seconds, rng)
        log.info("generators: %s", result["generators"])
        result["diversity"] = diversity(3, args.seed)
        log.info("diversity: %s", result["diversity"])
    if args.campaign is not None:
        result["validated_diversity"] = {
            "campaign": args.campaign.name,
            "rounds": validated_diversity(args.campaign),
        }
        log.info("validated diversity: %s", result["validated_diversity"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.n == 10000 else f"-n{args.n}"
    (RESULTS / f"generation{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    if "generators" in result:
        plot(result, RESULTS / f"generation{suffix}.png")
    log.info("wrote %s", RESULTS / f"generation{suffix}.json")


if __name__ == "__main__":
    main()
