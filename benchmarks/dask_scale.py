"""Validation throughput on a Dask LocalCluster: 1 worker against 2, the same relaxations.

    python benchmarks/dask_scale.py [--n 40] [--simulator chgnet]

Relaxes `n` small candidate structures (substituted prototypes, as generated) through
`discovery.engine.executors.DaskExecutor` with one single-threaded worker, then with two, after
warming every worker up (the potential's weights load once per worker), the costliest
structures first as the executor submits them; then with two workers in plain submission
order, for contrast. Records each run's wall time, worker busy fractions, how long workers
sat idle at the end, the driver's (and scheduler's) CPU time, and the best any order could
do given the one-worker task times. Run it on a quiet machine: the load average before and
after goes into the record. Writes `dask_speedup_2_workers` and a `dask` block into
benchmarks/results/scale.json (the store part of that file, from benchmarks/scale.py, is
kept) and a PNG.
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
import psutil  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screening_throughput import candidate_structures  # noqa: E402

from discovery.engine.executors import (  # noqa: E402
    DaskExecutor,
    SimulatorSpec,
    expected_cost,
    relax_one,
)
from simulators import RelaxSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MAX_ATOMS = 8


def _cpu_seconds() -> dict[str, float]:
    """CPU time so far of the whole machine, of this process (driver and scheduler) and of its
    children (nannies, workers), by pid."""
    me = psutil.Process()
    machine = psutil.cpu_times()
    out = {
        "machine": sum(machine) - machine.idle - getattr(machine, "iowait", 0.0),
        "driver": sum(me.cpu_times()[:2]),
    }
    for child in me.children(recursive=True):
        try:
            out[str(child.pid)] = sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return out


def relax_all(workers: int, spec: SimulatorSpec, structures, costs=None) -> tuple[dict, list]:
    from distributed import get_task_stream

    executor = DaskExecutor(workers=workers, retries=0)
    try:
        # Warm-up on every worker by name (the potential's weights load once per worker): two
        # warm-up tasks submitted as tasks may both land on one worker, leaving the other to
        # load its weights inside the timed run.
        executor.client.run(relax_one, spec, structures[0])
        cpu0 = _cpu_seconds()
        with get_task_stream(executor.client) as stream:
            started = time.perf_counter()
            results = dict(executor.relax_as_completed(spec, structures, costs))
            wall = time.perf_counter() - started
        cpu1 = _cpu_seconds()
    finally:
        executor.close()
    cpu = {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1}
    machine_cpu, driver_cpu = cpu.pop("machine"), cpu.pop("driver")
    children_cpu = sum(cpu.values())
    spans: dict[str, list[tuple[float, float]]] = {}
    task_s = {}
    for task in stream.data:
        for ss in task["startstops"]:
            if ss["action"] == "compute":
                spans.setdefault(task["worker"], []).append((ss["start"], ss["stop"]))
                task_s[int(task["key"].rsplit("-", 1)[1])] = ss["stop"] - ss["start"]
    end = max(stop for s in spans.values() for _, stop in s)
    busy = {w: sum(b - a for a, b in s) for w, s in spans.items()}
    stats = {
        "wall_s": wall,
        "compute_s": sum(busy.values()),
        "worker_busy_fraction": sorted(round(b / wall, 3) for b in busy.values()),
        # how long each worker sat idle at the end while another finished its last task
        "tail_idle_s": sorted(round(end - max(b for _, b in s), 2) for s in spans.values()),
        "driver_cpu_s": driver_cpu,
        "children_cpu_s": children_cpu,
        # other people's work on the machine meanwhile: a fair run has next to none
        "others_cpu_s": machine_cpu - driver_cpu - children_cpu,
        "task_s": [round(task_s[i], 3) for i in range(len(structures))],
    }
    return stats, [results[i] for i in range(len(structures))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--simulator", default="chgnet")
    parser.add_argument("--fmax", type=float, default=0.1)
    parser.add_argument("--max-steps", type=int, default=150)
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    log = logging.getLogger("dask_scale")

    pool = [s for s in candidate_structures(6 * args.n, seed=3) if len(s) <= MAX_ATOMS]
    structures = pool[: args.n]
    spec = SimulatorSpec(args.simulator, RelaxSettings(fmax=args.fmax, max_steps=args.max_steps))
    load_before = os.getloadavg()[0]
    if load_before > 1.5:
        log.warning(
            "load average %.1f: other work shares the cores; timings will show it", load_before
        )
    one_stats, one = relax_all(1, spec, structures)
    two_stats, two = relax_all(2, spec, structures)
    # The same two workers with every task of equal cost (submission order), for contrast
    fifo_stats, _ = relax_all(2, spec, structures, costs=[0] * len(structures))
    load_after = os.getloadavg()[0]
    diffs = [
        abs(a.energy_per_atom - b.energy_per_atom) * 1000
        for a, b in zip(one, two, strict=True)
        if a.ok and b.ok
    ]
    task_s = one_stats.pop("task_s")
    for stats in (two_stats, fifo_stats):
        stats.pop("task_s")
    # No order of these tasks on two workers can beat half their sum, nor the longest one.
    best_two = max(sum(task_s) / 2, max(task_s))
    one_s, two_s, fifo_s = one_stats["wall_s"], two_stats["wall_s"], fifo_stats["wall_s"]
    dask = {
        "simulator": args.simulator,
        "structures": len(structures),
        "atoms_per_structure_max": max(len(s) for s in structures),
        "one_worker_s": one_s,
        "two_workers_s": two_s,
        "two_workers_submission_order_s": fifo_s,
        "speedup_submission_order": one_s / fifo_s,
        "speedup_bound_from_task_times": sum(task_s) / best_two,
        "ok": [sum(r.ok for r in one), sum(r.ok for r in two)],
        "max_energy_diff_mev_per_atom": max(diffs) if diffs else None,
        "cpu_count": os.cpu_count(),
        "threads_per_worker": 1,
        "load_average_1min": [load_before, load_after],
        "runs": {"one_worker": one_stats, "two_workers": two_stats, "submission_order": fifo_stats},
        "task_s_one_worker": task_s,
        "expected_cost": [expected_cost(s) for s in structures],
    }
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    result = {**previous, "dask_speedup_2_workers": one_s / two_s, "dask": dask}
    result.pop("dask_note", None)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    labels = ["1 worker", "2 workers\n(submission order)", "2 workers\n(costliest first)"]
    rates = [len(structures) / t for t in (one_s, fifo_s, two_s)]
    bars = ax.bar(labels, rates)
    ax.bar_label(bars, fmt="%.2f")
    ax.set_ylabel("relaxations / s")
    ax.set_title(
        f"{len(structures)} {args.simulator} relaxations on Dask: {one_s / two_s:.2f}x", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(args.out.with_name("dask_scale.png"), dpi=120)
    log.warning(
        "speed-up %.2fx (submission order %.2fx, bound %.2fx)",
        one_s / two_s,
        one_s / fifo_s,
        dask["speedup_bound_from_task_times"],
    )


if __name__ == "__main__":
    main()
