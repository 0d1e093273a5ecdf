"""Screening throughput: the project's crystal-GNN ensemble against CHGNet, in one run.

    python benchmarks/screening_throughput.py [--n 500] [--members 5] [--threads N]
                                              [--device auto] [--repeats 3]

Builds `n` deterministic candidate structures (2-40 atoms: element-substituted prototypes over
several chemistries, in random supercells, on ideal sites as the generators make them; and a
rattled copy), then times
(a) `Ensemble.predict` of a `members`-member ensemble, graph building from pymatgen structures
included (no graph cache), (b) the same for a single member, and (c) CHGNet energy-only
predictions, batched. Each is warmed up once and timed `repeats` times; the best time counts,
since on a shared machine the noise only ever adds time. Writes
benchmarks/results/screening_throughput.json and .png.
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
from chgnet.model import CHGNet  # noqa: E402
from pymatgen.core import Element, Structure  # noqa: E402

from discovery.domain.generation.prototypes import prototype_names, prototype_structure  # noqa: E402
from models import Ensemble, GNNSettings, TrainSettings  # noqa: E402
from models.graph_cache import MemoryGraphCache, crystal_graphs  # noqa: E402
from models.graphs import collate, graphs_for  # noqa: E402
from models.orbits import reduce_equivalent_atoms  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# Element pools per chemistry; a candidate draws all its elements from one pool.
CHEMISTRIES = {
    "oxides": ["Li", "Na", "Mg", "Al", "Ti", "Mn", "Fe", "Co", "Ni", "Zn", "O"],
    "halides": ["Li", "Na", "K", "Cs", "Ca", "Sr", "Ba", "F", "Cl", "Br", "I"],
    "chalcogenides": ["Cu", "Zn", "Cd", "Ga", "In", "Sn", "Ge", "S", "Se", "Te"],
    "intermetallics": ["Al", "Cu", "Ni", "Fe", "Co", "Pt", "Au", "Pd", "Mo", "Si", "Mn"],
    "nitrides": ["Li", "B", "Al", "Ga", "Ti", "V", "Cr", "Si", "N", "C"],
}
MAX_ATOMS = 40
SUPERCELLS = ([1, 1, 1], [2, 1, 1], [1, 2, 1], [2, 2, 1], [1, 2, 2], [2, 2, 2], [3, 1, 1])


def _volume_per_atom(structure: Structure) -> float:
    # Spheres of the atomic radius filling ~55% of space: rough, but gives neighbour counts
    # typical of real crystals, which is what sets the GNN's cost.
    radii = [float(Element(site.specie.symbol).atomic_radius or 1.5) for site in structure]
    return float(np.mean([4.0 / 3.0 * np.pi * r**3 for r in radii])) / 0.55


def candidate_structures(n: int, seed: int = 0, rattle: float = 0.0) -> list[Structure]:
    """`n` ordered structures of 2-40 atoms, the same for the same seed. With rattle = 0 they
    are what the substitution generator proposes (ideal sites); rattle > 0 displaces atoms by
    up to that many Å, which breaks the symmetry the graph builder exploits."""
    rng = np.random.default_rng(seed)
    bases = []
    for name in prototype_names():
        proto = prototype_structure(name).copy()
        proto.remove_oxidation_states()
        bases.append(proto)
    pools = list(CHEMISTRIES.values())
    structures: list[Structure] = []
    while len(structures) < n:
        base = bases[int(rng.integers(len(bases)))]
        pool = pools[int(rng.integers(len(pools)))]
        old = [el.symbol for el in base.composition.elements]
        new = rng.choice(pool, size=len(old), replace=False)
        s = base.copy()
        s.replace_species(dict(zip(old, new.tolist(), strict=True)))
        s.scale_lattice(_volume_per_atom(s) * len(s) * rng.uniform(0.9, 1.15))
        fits = [m for m in SUPERCELLS if len(s) * int(np.prod(m)) <= MAX_ATOMS]
        s.make_supercell(fits[int(rng.integers(len(fits)))])
        displace_seed = int(rng.integers(2**31))  # drawn either way: same cells for any rattle
        if rattle > 0:
            s.perturb(rattle, min_distance=0.02, seed=displace_seed)
        structures.append(s)
    return structures


def fitted_ensemble(members: int, structures: list[Structure], device: str) -> Ensemble:
    """An ensemble trained for one epoch so that it can predict; the weights don't matter here."""
    ensemble = Ensemble(GNNSettings(), n_members=members, seed=0, device=device)
    targets = [0.01 * i for i in range(len(structures))]
    ensemble.fit(structures, targets, TrainSettings(epochs=1, batch_size=8, val_fraction=0.0))
    return ensemble


def collapsed_fraction(structures: list[Structure], cutoff: float) -> dict[str, float]:
    """How much of the work the exact collapse of equivalent atoms (models.orbits) leaves."""
    batch = collate(crystal_graphs(structures, cutoff), torch.device("cpu"))
    reduced = reduce_equivalent_atoms(batch)
    return {
        "nodes": len(reduced.z) / batch.num_nodes,
        "edges": reduced.edge_index.shape[1] / batch.edge_index.shape[1],
    }


def timings(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Wall seconds of each repeat of each function, the functions taking turns so that a change
    in the machine's load hits all of them alike."""
    for fn in fns.values():
        fn()  # warm-up: allocator, lazy imports, kernel selection
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return times


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def plot(result: dict, path: Path) -> None:
    labels = [f"GNN ensemble\n({result['members']} members)", "GNN single member", "CHGNet"]
    values = [
        result["gnn_structures_per_s"],
        result["gnn_single_member_structures_per_s"],
        result["chgnet_structures_per_s"],
    ]
    fig, ax = plt.subplots(figsize=(6, 4))
    bars = ax.bar(labels, values, color=["tab:blue", "tab:cyan", "tab:gray"])
    ax.bar_label(bars, fmt="%.0f")
    ax.margins(y=0.12)
    ax.set_ylabel("structures / s (higher is better)")
    ax.set_title(
        f"Screening throughput, {result['n_structures']} structures, "
        f"{result['device']}, {result['threads']} thread(s)\n"
        f"ensemble / CHGNet = {result['ratio']:.1f}x",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500, help="number of structures")
    parser.add_argument("--members", type=int, default=5, help="ensemble members")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="GNN predict batch size")
    parser.add_argument("--chgnet-batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rattle", type=float, default=0.1, help="Å; also time a rattled copy of the set"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "screening_throughput.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # Explicit, since OpenMP oversubscription on a shared machine costs far more than it gains.
    torch.set_num_threads(args.threads)
    load_before = load_average()

    structures = candidate_structures(args.n, args.seed)
    rattled = candidate_structures(args.n, args.seed, rattle=args.rattle)
    sizes = [len(s) for s in structures]
    fit_set = candidate_structures(8, args.seed + 1)
    ensemble = fitted_ensemble(args.members, fit_set, args.device)
    single = fitted_ensemble(1, fit_set, args.device)
    device = str(ensemble.device)

    chgnet = CHGNet.load(use_device=ensemble.device.type, verbose=False)
    cutoff = ensemble.settings.cutoff
    warm_cache = MemoryGraphCache()
    crystal_graphs(structures, cutoff, warm_cache)

    def run_chgnet(which):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            chgnet.predict_structure(which, task="e", batch_size=args.chgnet_batch_size)

    times = timings(
        {
            "gnn": lambda: ensemble.predict(structures, batch_size=args.batch_size),
            "gnn_single_member": lambda: single.predict(structures, batch_size=args.batch_size),
            "chgnet": lambda: run_chgnet(structures),
            "gnn_rattled": lambda: ensemble.predict(rattled, batch_size=args.batch_size),
            "chgnet_rattled": lambda: run_chgnet(rattled),
            # Included in the GNN figures; timed alone to show how much of them it is.
            "graph_building": lambda: graphs_for(structures, ensemble.settings.cutoff),
            # What a campaign pays instead when the graphs are in its cache (here in memory).
            "graph_cache_hits": lambda: crystal_graphs(structures, cutoff, warm_cache),
        },
        args.repeats,
    )
    gnn_s, single_s, chgnet_s = (min(times[k]) for k in ("gnn", "gnn_single_member", "chgnet"))

    n = len(structures)
    result = {
        "gnn_structures_per_s": n / gnn_s,
        "gnn_single_member_structures_per_s": n / single_s,
        "chgnet_structures_per_s": n / chgnet_s,
        "ratio": chgnet_s / gnn_s,
        "rattled": {
            "rattle_angstrom": args.rattle,
            "gnn_structures_per_s": n / min(times["gnn_rattled"]),
            "chgnet_structures_per_s": n / min(times["chgnet_rattled"]),
            "ratio": min(times["chgnet_rattled"]) / min(times["gnn_rattled"]),
        },
        "graph_building_structures_per_s": n / min(times["graph_building"]),
        "graph_cache_hit_structures_per_s": n / min(times["graph_cache_hits"]),
        "nodes_after_collapsing_equivalent_atoms": collapsed_fraction(structures, cutoff),
        "n_structures": n,
        "device": device,
        "threads": torch.get_num_threads(),
        "members": args.members,
        "gnn_settings": ensemble.settings.to_dict(),
        "gnn_batch_size": args.batch_size,
        "chgnet_batch_size": args.chgnet_batch_size,
        "repeats": args.repeats,
        "timings_s": times,
        "atoms_per_structure": {
            "min": min(sizes),
            "mean": float(np.mean(sizes)),
            "max": max(sizes),
        },
        "load_average": {"before": load_before, "after": load_average()},
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "chgnet": version("chgnet"),
            "pymatgen": version("pymatgen"),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out.with_suffix(".png"))
    print(json.dumps({k: result[k] for k in list(result)[:8]}, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
