"""Relaxation throughput: batched against sequential, same potential, same structures, one run.

    python benchmarks/relax_throughput.py [--n 32] [--potentials sevennet chgnet]
                                          [--batch-size 16] [--threads 2]
                                          [--also-threads 1] [--seed 0]

Builds `n` small crystals (1-20 atoms: rock salt, zinc blende, diamond, fcc, bcc, CsCl and
perovskite prototypes of real compounds at roughly their lattice constants, some as
supercells), strains each cell by up to 4 % per axis and rattles the atoms by 0.05 Å, then
relaxes all of them (FIRE + FrechetCellFilter, fmax 0.05 eV/Å, 300 steps) with each
potential: one at a time through its ASE calculator (`Simulator.relax_many`), and batched
(`Simulator.relax_many(batched=True)`: one model call per step for every structure still
relaxing, in one lane per torch thread), both on `--threads` torch threads. The sequential
path is also timed on `--also-threads` (a tiny cell can run faster on one thread than on
two); the headline ratio is against the faster sequential run, so the baseline is the
sequential path at its best, and the same-thread-count ratio is reported beside it. All
paths are warmed up first. Writes benchmarks/results/relax_throughput.json (top level: the
first potential) and .png.
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
from threadpoolctl import threadpool_limits  # noqa: E402

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
    # BLAS only: a bare threadpool_limits(1) also sets OpenMP, i.e. torch's own threads, to 1.
    threadpool_limits(1, user_api="blas")
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    results = list(simulator.relax_many(structures, batched=batched, batch_size=batch_size))
    return time.perf_counter() - t0, results


def run_potential(
    name: str, structures, batch_size: int, threads: int, also_threads: list[int]
) -> dict:
    settings = RelaxSettings(fmax=0.05, max_steps=300, optimizer="FIRE")
    simulator = Simulator(name, settings)
    # Warm-up: model loading and first-call overheads belong to neither path.
    torch.set_num_threads(threads)
    list(simulator.relax_many(structures[:2]))
    list(simulator.relax_many(structures[:2], batched=True))
    sequential = {}
    for n in [threads, *also_threads]:
        seq_s, seq = time_path(simulator, structures, False, batch_size, n)
        sequential[n] = (seq_s, seq)
        log.info("%s sequential, %d torch threads: %.1f s", name, n, seq_s)
    bat_s, bat = time_path(simulator, structures, True, batch_size, threads)
    log.info("%s batched, %d torch threads: %.1f s", name, threads, bat_s)
    best_threads = min(sequential, key=lambda n: sequential[n][0])
    seq_s, seq = sequential[best_threads]
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
        "sequential_s": seq_s,
        "sequential_best_threads": best_threads,
        "sequential_s_by_threads": {str(n): t for n, (t, _) in sequential.items()},
        "batched_s": bat_s,
        "sequential_structures_per_s": len(structures) / seq_s,
        "batched_structures_per_s": len(structures) / bat_s,
        "ratio": seq_s / bat_s,
        "ratio_same_threads": sequential[threads][0] / bat_s,
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
        f"{runs[0]['torch_threads']} threads"
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
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    warnings.filterwarnings("ignore")
    # BLAS on one thread in both paths (time_path): OpenBLAS threads spinning on a shared
    # machine slowed FrechetCellFilter's small matrix exponentials many times over.
    structures = build_structures(args.n, args.seed)
    # Timings on a shared machine are only as good as its load; record it.
    load_before = os.getloadavg()
    runs = [
        run_potential(name, structures, args.batch_size, args.threads, args.also_threads)
        for name in args.potentials
    ]
    head = runs[0]
    result = {
        "batched_structures_per_s": head["batched_structures_per_s"],
        "sequential_structures_per_s": head["sequential_structures_per_s"],
        "ratio": head["ratio"],
        "max_energy_diff_mev_per_atom": head["max_energy_diff_mev_per_atom"],
        "device": "cpu",
        "potential": head["potential"],
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
    (RESULTS / "relax_throughput.json").write_text(json.dumps(result, indent=2))
    plot(runs, RESULTS / "relax_throughput.png")
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


def _installed(package: str) -> bool:
    try:
        version(package)
    except Exception:
        return False
    return True


if __name__ == "__main__":
    main()
