"""Validation throughput on a Dask LocalCluster: 1 worker against 2, the same relaxations.

    python benchmarks/dask_scale.py [--n 40] [--simulator chgnet]

Relaxes `n` small candidate structures (substituted prototypes, as generated) through
`discovery.executors.DaskExecutor` with one single-threaded worker, then with two, after
warming every worker up (the potential's weights load once per worker). Writes
`dask_speedup_2_workers` and a `dask` block into benchmarks/results/scale.json (the store part
of that file, from benchmarks/scale.py, is kept) and a PNG.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

# Each worker is one single-threaded process; set before torch is imported anywhere.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screening_throughput import candidate_structures  # noqa: E402

from discovery.executors import DaskExecutor, SimulatorSpec  # noqa: E402
from simulators import RelaxSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MAX_ATOMS = 8


def relax_all(workers: int, spec: SimulatorSpec, structures) -> tuple[float, list]:
    executor = DaskExecutor(workers=workers, retries=0)
    try:
        # Warm-up: one task per worker loads the potential there.
        warm = structures[:workers]
        list(executor.relax_as_completed(spec, warm))
        started = time.perf_counter()
        results = dict(executor.relax_as_completed(spec, structures))
        return time.perf_counter() - started, [results[i] for i in range(len(structures))]
    finally:
        executor.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--simulator", default="chgnet")
    parser.add_argument("--fmax", type=float, default=0.1)
    parser.add_argument("--max-steps", type=int, default=150)
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    pool = [s for s in candidate_structures(6 * args.n, seed=3) if len(s) <= MAX_ATOMS]
    structures = pool[: args.n]
    spec = SimulatorSpec(args.simulator, RelaxSettings(fmax=args.fmax, max_steps=args.max_steps))
    one_s, one = relax_all(1, spec, structures)
    two_s, two = relax_all(2, spec, structures)
    diffs = [
        abs(a.energy_per_atom - b.energy_per_atom) * 1000
        for a, b in zip(one, two, strict=True)
        if a.ok and b.ok
    ]
    dask = {
        "simulator": args.simulator,
        "structures": len(structures),
        "atoms_per_structure_max": max(len(s) for s in structures),
        "one_worker_s": one_s,
        "two_workers_s": two_s,
        "ok": [sum(r.ok for r in one), sum(r.ok for r in two)],
        "max_energy_diff_mev_per_atom": max(diffs) if diffs else None,
        "cpu_count": os.cpu_count(),
        "threads_per_worker": 1,
    }
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    result = {**previous, "dask_speedup_2_workers": one_s / two_s, "dask": dask}
    result.pop("dask_note", None)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    fig, ax = plt.subplots(figsize=(5, 3.5))
    bars = ax.bar(["1 worker", "2 workers"], [len(structures) / one_s, len(structures) / two_s])
    ax.bar_label(bars, fmt="%.2f")
    ax.set_ylabel("relaxations / s")
    ax.set_title(
        f"{len(structures)} {args.simulator} relaxations on Dask: {one_s / two_s:.2f}x", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(args.out.with_name("dask_scale.png"), dpi=120)
    logging.getLogger("dask_scale").warning("speed-up %.2fx (%s)", one_s / two_s, dask)


if __name__ == "__main__":
    main()
