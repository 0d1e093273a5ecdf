"""Relaxation throughput: batched against sequential, same potential, same structures, one run.

    python benchmarks/relax_throughput.py [--n 32] [--potentials sevennet chgnet]
                                          [--batch-size 16] [--threads 2]
                                          [--also-threads 1] [--repeats 3] [--seed 0]
                                          [--device cpu|cuda] [--pool N]

Builds `n` small crystals (1-20 atoms: rock salt, zinc blende, diamond, fcc, bcc, CsCl and
perovskite prototypes of real compounds at roughly their lattice constants, some as
supercells), strains each cell by up to 4 % per axis and rattles the atoms by 0.05 Å, then
relaxes all of them (FIRE + FrechetCellFilter, fmax 0.05 eV/Å, 300 steps) with each
potential: one at a time through its ASE calculator (`Simulator.relax_many`), and batched
(`Simulator.relax_many(batched=True)`: one model call per step for every structure still
relaxing, on CPU in one lane per torch thread), both on `--threads` torch threads. On CPU
the sequential path is also timed on `--also-threads` (a tiny cell can run faster on one
thread than on two); the headline ratio is against the faster sequential run, so the
baseline is the sequential path at its best, and the same-thread-count ratio is reported
beside it. All paths are warmed up first, and each is timed `--repeats` times in turn
(sequential, batched, sequential, ...) so a slow spell of a shared machine hits both; a
path's time is its fastest repeat, as timeit reports. For context it also times what a
campaign does by default, the pool executor's one-thread worker processes (`--pool`, one
per core) relaxing one structure each; the headline stays batched against one at a time,
as the issue defines it. Writes
benchmarks/results/relax_throughput.json (top level: the first potential; with
`--device cuda`, relax_throughput_cuda.json) and .png.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from pymatgen.core import Lattice, Structure  # noqa: E402

from discovery.engine.executors import PoolExecutor, SimulatorSpec, default_workers  # noqa: E402
from discovery.engine.threads import limit_threads  # noqa: E402
from simulators import RelaxSettings, Simulator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
log = logging.getLogger("relax_throughput")

# (space group, Wyckoff sites) per prototype; compounds as (species, cubic a in Å).
PROTOTYPES = {
    "rocksalt": ("Fm-3m", [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "zincblende": ("F-43m", [[0, 0, 0], [0.25, 0.25, 0.25]]),
    "diamond": ("Fd-3m", [[0, 0, 0]]),
    "fcc": ("Fm-3m", [[0, 0, 0]]),
    "bcc": ("Im-3m", [[0, 0, 0]]),
    "cscl": ("Pm-3m", [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "perovskite": ("Pm-3m", [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]),
}
COMPOUNDS = [
    ("rocksalt", ["Na", "Cl"], 5.64),
    ("rocksalt", ["Mg", "O"], 4.21),
    ("rocksalt", ["Li", "F"], 4.03),
    ("rocksalt", ["K", "Cl"], 6.29),
    ("rocksalt", ["Ca", "O"], 4.81),
    ("rocksalt", ["Li", "Cl"], 5.13),
    ("rocksalt", ["Sr", "O"], 5.16),
    ("rocksalt", ["Ni", "O"], 4.18),
    ("rocksalt", ["Mn", "O"], 4.45),
    ("zincblende", ["Ga", "As"], 5.65),
    ("zincblende", ["Zn", "S"], 5.41),
    ("zincblende", ["Si", "C"], 4.36),
    ("zincblende", ["Al", "P"], 5.46),
    ("zincblende", ["In", "P"], 5.87),
    ("zincblende", ["B", "N"], 3.62),
    ("diamond", ["Si"], 5.43),
    ("diamond", ["Ge"], 5.66),
    ("diamond", ["C"], 3.57),
    ("fcc", ["Cu"], 3.61),
    ("fcc", ["Al"], 4.05),
    ("fcc", ["Ni"], 3.52),
    ("fcc", ["Au"], 4.08),
    ("fcc", ["Pt"], 3.92),
    ("fcc", ["Pd"], 3.89),
    ("bcc", ["Fe"], 2.87),
    ("bcc", ["W"], 3.16),
    ("bcc", ["Mo"], 3.15),
    ("bcc", ["V"], 3.03),
    ("bcc", ["Na"], 4.29),
    ("cscl", ["Cs", "Cl"], 4.12),
    ("cscl", ["Ni", "Al"], 2.88),
    ("cscl", ["Cu", "Zn"], 2.95),
    ("perovskite", ["Ti", "Sr", "O"], 3.90),
    ("perovskite", ["Ti", "Ba", "O"], 4.00),
    ("perovskite", ["Ti", "Ca", "O"], 3.84),
    ("perovskite", ["Nb", "K", "O"], 4.00),
]


SUPERCELLS = ([1, 1, 1], [2, 1, 1], [2, 2, 1])


def build_structures(n: int, seed: int) -> list[Structure]:
    """`n` strained, rattled small crystals, cycling through COMPOUNDS with supercells."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        proto, species, a = COMPOUNDS[i % len(COMPOUNDS)]
        group, sites = PROTOTYPES[proto]
        structure = Structure.from_spacegroup(
            group, Lattice.cubic(a), species, sites
        ).get_primitive_structure()
        # Sizes cycle through primitive, doubled and quadrupled cells.
        structure.make_supercell(SUPERCELLS[i % len(SUPERCELLS)])
        strain = np.diag(1 + rng.uniform(-0.04, 0.04, 3))
        structure = Structure(
            Lattice(structure.lattice.matrix @ strain),
            structure.species,
            structure.frac_coords,
        )
        displacements = rng.normal(0, 0.05, (len(structure), 3))
        for j, d in enumerate(displacements):
            structure.translate_sites([j], d, frac_coords=False)
        out.append(structure)
    return out


def time_path(simulator: Simulator, structures, batched: bool, batch_size: int, threads: int):
    # torch on `threads`, every BLAS on one (numpy's and SciPy's: the cell filter's small
    # matrix functions only lose to BLAS threads spinning beside the model's).
    limit_threads(threads)
    if simulator.device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    results = list(simulator.relax_many(structures, batched=batched, batch_size=batch_size))
    return time.perf_counter() - t0, results


def run_potential(
    name: str,
    structures,
    batch_size: int,
    threads: int,
    also_threads: list[int],
    repeats: int,
    device: str,
    pool_workers: int,
) -> dict:
    settings = RelaxSettings(fmax=0.05, max_steps=300, optimizer="FIRE")
    simulator = Simulator(name, settings, device=device)
    # Warm-up: model loading and first-call overheads belong to neither path.
    torch.set_num_threads(threads)
    list(simulator.relax_many(structures[:2]))
    list(simulator.relax_many(structures[:2], batched=True))
    seq_times: dict[int, list[float]] = {n: [] for n in [threads, *also_threads]}
    bat_times: list[float] = []
    pool_times: list[float] = []
    sequential, bat = {}, None
    # What a campaign does by default: one-thread worker processes, one structure each.
    pool = PoolExecutor(pool_workers, retries=0) if pool_workers else None
    spec = SimulatorSpec(name, settings, device=device)
    if pool is not None:
        list(pool.relax_as_completed(spec, structures[: 2 * pool_workers]))
    for rep in range(repeats):
        if pool is not None:
            t0 = time.perf_counter()
            list(pool.relax_as_completed(spec, structures))
            pool_times.append(time.perf_counter() - t0)
            log.info("%s pool of %d, repeat %d: %.1f s", name, pool_workers, rep, pool_times[-1])
        for n in seq_times:
            seq_s, sequential[n] = time_path(simulator, structures, False, batch_size, n)
            seq_times[n].append(seq_s)
            log.info("%s sequential, %d torch threads, repeat %d: %.1f s", name, n, rep, seq_s)
        bat_s, bat = time_path(simulator, structures, True, batch_size, threads)
        bat_times.append(bat_s)
        log.info("%s batched, %d torch threads, repeat %d: %.1f s", name, threads, rep, bat_s)
    if pool is not None:
        pool.close()
    best_threads = min(seq_times, key=lambda n: min(seq_times[n]))
    seq_s, seq = min(seq_times[best_threads]), sequential[best_threads]
    bat_s = min(bat_times)
    # Each repeat's own ratio (against that repeat's best sequential run): the spread says
    # how much the machine's load moved the headline.
    ratios_by_repeat = [
        min(seq_times[n][i] for n in seq_times) / bat_times[i] for i in range(repeats)
    ]
    diffs = [
        abs(a.energy_per_atom - b.energy_per_atom) * 1000
        for a, b in zip(seq, bat, strict=True)
        if a.ok and b.ok
    ]
    return {
        "potential": name,
        "structures": len(structures),
        "atoms": [len(s) for s in structures],
        "torch_threads": threads,
        "device": device,
        "repeats": repeats,
        "sequential_s": seq_s,
        "sequential_best_threads": best_threads,
        "sequential_s_by_threads": {str(n): min(t) for n, t in seq_times.items()},
        "sequential_s_repeats": {str(n): t for n, t in seq_times.items()},
        "batched_s": bat_s,
        "batched_s_repeats": bat_times,
        "ratio_by_repeat": ratios_by_repeat,
        "ratio_median_of_repeats": float(np.median(ratios_by_repeat)),
        "sequential_structures_per_s": len(structures) / seq_s,
        "batched_structures_per_s": len(structures) / bat_s,
        "ratio": seq_s / bat_s,
        "ratio_same_threads": min(seq_times[threads]) / bat_s,
        "pool_workers": pool_workers,
        "pool_s": min(pool_times) if pool_times else None,
        "pool_s_repeats": pool_times,
        "ratio_vs_pool": min(pool_times) / bat_s if pool_times else None,
        "max_energy_diff_mev_per_atom": max(diffs) if diffs else None,
        "energy_diff_mev_per_atom": diffs,
        "both_ok": len(diffs),
        "converged_sequential": sum(r.converged for r in seq),
        "converged_batched": sum(r.converged for r in bat),
        "steps_sequential": [r.steps for r in seq],
        "steps_batched": [r.steps for r in bat],
        "errors": [r.error for r in seq + bat if r.error],
    }


def plot(runs: list[dict], path: Path) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    names = [r["potential"] for r in runs]
    x = np.arange(len(runs))
    ax1.bar(
        x - 0.2,
        [r["sequential_structures_per_s"] for r in runs],
        0.4,
        label="sequential (best thread count)",
    )
    ax1.bar(x + 0.2, [r["batched_structures_per_s"] for r in runs], 0.4, label="batched")
    for i, r in enumerate(runs):
        ax1.text(i + 0.2, r["batched_structures_per_s"], f"{r['ratio']:.1f}x", ha="center")
    ax1.set_xticks(x, names)
    ax1.set_ylabel("relaxations per second")
    ax1.set_title(
        f"{runs[0]['structures']} relaxations, FIRE + FrechetCellFilter, "
        + (
            f"{runs[0]['torch_threads']} threads"
            if runs[0]["device"] == "cpu"
            else runs[0]["device"]
        )
    )
    ax1.legend()
    for r in runs:
        diffs = np.maximum(r["energy_diff_mev_per_atom"], 1e-6)
        ax2.semilogy(sorted(diffs), "o", label=r["potential"])
    ax2.axhline(1.0, color="k", ls="--", lw=0.8, label="1 meV/atom")
    ax2.set_xlabel("structure (sorted)")
    ax2.set_ylabel("|E batched - E sequential| (meV/atom)")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--potentials", nargs="+", default=["sevennet"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="torch threads, both paths")
    # The sequential path is timed here too, and the faster of its runs is the baseline.
    parser.add_argument("--also-threads", type=int, nargs="*", default=[1])
    parser.add_argument("--repeats", type=int, default=3, help="timings per path, best kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU figure")
    parser.add_argument(
        "--pool",
        type=int,
        default=None,
        help="also time a campaign's default executor, this many one-thread worker processes "
        "(default: one per core on a CPU, none on a GPU; 0: skip)",
    )
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this torch ({torch.__version__}) sees no CUDA")
    if args.device.startswith("cuda"):
        # Thread counts only matter for the CPU baseline.
        args.also_threads = []
    if args.pool is None:
        args.pool = 0 if args.device.startswith("cuda") else default_workers()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    warnings.filterwarnings("ignore")
    # BLAS on one thread in both paths (time_path): OpenBLAS threads spinning on a shared
    # machine slowed FrechetCellFilter's small matrix exponentials many times over.
    structures = build_structures(args.n, args.seed)
    # Timings on a shared machine are only as good as its load; record it.
    load_before = os.getloadavg()
    runs = [
        run_potential(
            name,
            structures,
            args.batch_size,
            args.threads,
            args.also_threads,
            args.repeats,
            args.device,
            args.pool,
        )
        for name in args.potentials
    ]
    head = runs[0]
    result = {
        "batched_structures_per_s": head["batched_structures_per_s"],
        "sequential_structures_per_s": head["sequential_structures_per_s"],
        "ratio": head["ratio"],
        "max_energy_diff_mev_per_atom": head["max_energy_diff_mev_per_atom"],
        "device": _device_name(args.device),
        "potential": head["potential"],
        "ratio_median_of_repeats": head["ratio_median_of_repeats"],
        "ratio_vs_pool": head["ratio_vs_pool"],
        "repeats": args.repeats,
        "ratio_same_threads": head["ratio_same_threads"],
        "torch_threads": args.threads,
        "sequential_best_threads": head["sequential_best_threads"],
        "sequential_s_by_threads": head["sequential_s_by_threads"],
        "cpu_count": os.cpu_count(),
        "batch_size": args.batch_size,
        "settings": {"optimizer": "FIRE", "fmax": 0.05, "max_steps": 300, "cell": "Frechet"},
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "versions": {p: version(p) for p in ("torch", "ase", "sevenn", "chgnet") if _installed(p)},
        "python": platform.python_version(),
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "relax_throughput" if args.device == "cpu" else "relax_throughput_cuda"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2))
    plot(runs, RESULTS / f"{stem}.png")
    for r in runs:
        log.info(
            "%s: sequential %.2f/s, batched %.2f/s, ratio %.2fx (%.2fx at equal threads), "
            "max diff %.3g meV/atom",
            r["potential"],
            r["sequential_structures_per_s"],
            r["batched_structures_per_s"],
            r["ratio"],
            r["ratio_same_threads"],
            r["max_energy_diff_mev_per_atom"] or float("nan"),
        )


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


def _installed(package: str) -> bool:
    try:
        version(package)
    except Exception:
        return False
    return True


if __name__ == "__main__":
    main()
