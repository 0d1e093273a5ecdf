"""Record the quickstart campaign: per-round discovery metrics and timings.

    python benchmarks/quickstart.py                 # runs campaigns/quickstart.yaml afresh
    python benchmarks/quickstart.py --dir runs/qs   # records (or finishes) a run in that dir

Writes benchmarks/results/quickstart.json and quickstart.png. Ratios are taken inside the
one run: the GNN screen's per-structure cost against the simulator's and, when round 0 was
picked at random (a campaign from scratch), the later rounds' hit rate against it. From a
checkpoint (the quickstart's `model.init: bundled`) round 0 is screened too, and
`round0_guided` says so; benchmarks/campaign_efficiency.py measures it against random.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sqlite3
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from discovery.config import load_config  # noqa: E402
from discovery.engine.campaign_directory import open_campaign  # noqa: E402
from discovery.engine.progress import StageProgress  # noqa: E402
from discovery.engine.round_loop import run_campaign  # noqa: E402
from discovery.frontends.status import round_rows  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
KEYS = ("round", "validated", "stable", "hit_rate", "mae_before_retrain", "wall_s")


def _ratio(a, b):
    return a / b if a is not None and b else None


def summarise(directory: Path, total_wall_s: float | None) -> dict:
    camp = open_campaign(directory)
    rows = round_rows(camp)
    rounds = [{k: row.get(k) for k in KEYS} for row in rows]
    first, later = rows[0], rows[1:]
    round0_guided = bool(first.get("screened"))
    later_validated = sum(r.get("validated", 0) for r in later)
    later_stable = sum(r.get("stable", 0) for r in later)
    later_hit = later_stable / later_validated if later_validated else None
    screened = sum(r.get("screened", 0) for r in rows)
    screen_s = sum(r.get("wall_screened_s", 0.0) for r in rows)
    validated = sum(r.get("validated", 0) for r in rows)
    validate_s = sum(r.get("wall_validated_s", 0.0) for r in rows)
    return {
        "campaign": camp.config.name,
        "simulator": camp.fidelity,
        "rounds": rounds,
        "known_phases": known_phase_summary(directory),
        "total_wall_s": total_wall_s,
        "round0_guided": round0_guided,
        "ratios": {
            "later_over_random_round0": None
            if round0_guided
            else _ratio(later_hit, first.get("hit_rate")),
            "round0_hit_rate": first.get("hit_rate"),
            "later_hit_rate": later_hit,
            "simulator_s_per_structure": _ratio(validate_s, validated),
            "screen_s_per_structure": _ratio(screen_s, screened),
            "screen_speedup_over_simulator": _ratio(
                _ratio(validate_s, validated), _ratio(screen_s, screened)
            ),
        },
        "machine": {
            "cpus": __import__("os").cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
            "python": platform.python_version(),
            "torch": version("torch"),
            "chgnet": version("chgnet"),
        },
    }


def known_phase_summary(directory: Path) -> dict:
    """What the campaign was judged against: the known phases on its last hull, the
    candidates that turned out known, and the novelty of what reached the review queue."""
    with sqlite3.connect(directory / "campaign.db") as con:
        known = con.execute("SELECT count(*) FROM candidates WHERE origin = 'known'").fetchone()
        last = con.execute("SELECT max(round_index) FROM hull_results").fetchone()[0]
        on_hull = con.execute(
            "SELECT count(DISTINCT h.candidate_id) FROM hull_results h JOIN candidates c "
            "ON c.id = h.candidate_id WHERE c.origin = 'known' AND h.round_index = ?",
            (last,),
        ).fetchone()
        novelty = dict(
            con.execute(
                "SELECT coalesce(novelty, 'unchecked'), count(*) FROM candidates "
                "WHERE NOT is_reference AND status = 'validated' GROUP BY 1"
            ).fetchall()
        )
        queued = dict(
            con.execute(
                "SELECT coalesce(c.novelty, 'unchecked'), count(*) FROM review_queue q "
                "JOIN candidates c ON c.id = q.candidate_id GROUP BY 1"
            ).fetchall()
        )
        rediscovered = [
            f"{uid} = {known_id}"
            for uid, known_id in con.execute(
                "SELECT uid, known_id FROM candidates WHERE novelty = 'known' ORDER BY uid"
            )
        ]
    return {
        "known_phases": known[0],
        "known_phases_in_last_hull": on_hull[0],
        "validated_by_novelty": novelty,
        "queued_by_novelty": queued,
        "rediscovered": rediscovered,
    }


def plot(result: dict, path: Path) -> None:
    rounds = result["rounds"]
    xs = [r["round"] for r in rounds]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=110)
    first = "C0" if result.get("round0_guided") else "grey"
    a.bar(xs, [r["hit_rate"] or 0 for r in rounds], color=[first] + ["C0"] * (len(xs) - 1))
    a.set_xlabel("round" + ("" if result.get("round0_guided") else " (0 = random)"))
    a.set_ylabel("hit rate (stable / validated)")
    cum, total = [], 0
    for r in rounds:
        total += r["stable"] or 0
        cum.append(total)
    b.plot(xs, cum, "o-")
    b.set_xlabel("round")
    b.set_ylabel("cumulative stable found")
    fig.suptitle(f"{result['campaign']} ({result['simulator']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "campaigns" / "quickstart.yaml")
    parser.add_argument("--dir", type=Path, default=None, help="campaign dir (default: temp)")
    parser.add_argument("--out", type=Path, default=RESULTS / "quickstart.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(max(1, (__import__("os").cpu_count() or 2) // 2))
    config = load_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dir or Path(tmp) / "quickstart"
        t0 = time.perf_counter()
        run_campaign(config, directory, StageProgress(False))
        wall = time.perf_counter() - t0
        result = summarise(directory, wall if args.dir is None else None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    plot(result, args.out.with_suffix(".png"))
    logging.getLogger(__name__).info("wrote %s", args.out)


if __name__ == "__main__":
    main()
