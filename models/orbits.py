"""Collapse atoms the crystal GNN cannot tell apart into one node each, exactly.

Atoms related by a symmetry of the crystal (a lattice translation of a supercell, a point
operation of a prototype) see the same species at the same distances, so every layer of a
message-passing network gives them the same features. Colour refinement (1-dimensional
Weisfeiler-Leman) over species, distances and edge weights finds such classes without a symmetry
search: a stable colouring is an equitable partition, so one representative per class, with
edges from it to the classes of its neighbours and the count of atoms it stands for, computes
the same energy per atom as the full graph. Generated candidates are highly symmetric, and the
work of the network scales with the number of atoms kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch

# Distances equal to this many Å are one distance; matches the merging of periodic images.
_DISTANCE_QUANTUM = 1e-6
# Odd 64-bit constants for hashing (splitmix64's); arithmetic wraps modulo 2**64 on purpose.
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a bijection on uint64 whose output bits all depend on every input
    bit, so that sums of mixed values (multisets) rarely collide."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


@dataclass
class ReducedBatch:
    """A collated batch with one node per class of equivalent atoms; `node_weight` counts the
    atoms each node stands for. Has the attributes CrystalGNN reads from a PyG Batch."""

    z: Tensor
    edge_index: Tensor
    edge_dist: Tensor
    edge_weight: Tensor
    node_weight: Tensor
    batch: Tensor
    num_graphs: int

    def to(self, device: torch.device | str) -> ReducedBatch:
        return ReducedBatch(
            z=self.z.to(device),
            edge_index=self.edge_index.to(device),
            edge_dist=self.edge_dist.to(device),
            edge_weight=self.edge_weight.to(device),
            node_weight=self.node_weight.to(device),
            batch=self.batch.to(device),
            num_graphs=self.num_graphs,
        )


def atom_classes(
    z: np.ndarray, src: np.ndarray, dst: np.ndarray, dist_key: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    """Stable colour of every atom (dense ints), refined from the species until no class
    splits. Atoms of different graphs may share a colour; callers split by graph."""
    with np.errstate(over="ignore"):
        edge_const = _mix(dist_key.astype(np.uint64) * _GOLDEN + weight.astype(np.uint64))
        colour = np.unique(z, return_inverse=True)[1].astype(np.uint64)
        n_colours = int(colour.max()) + 1 if colour.size else 0
        while True:
            signature = np.zeros(len(colour), dtype=np.uint64)
            np.add.at(signature, dst, _mix(edge_const ^ (colour[src] * _M2)))
            # 1-D keys: np.unique over rows is several times slower than over scalars.
            refined = np.unique(_mix(colour * _GOLDEN) + signature, return_inverse=True)[1]
            refined = refined.reshape(-1)
            n_refined = int(refined.max()) + 1 if refined.size else 0
            colour = refined.astype(np.uint64)
            # Refinement only ever splits classes, so an unchanged count means it is stable.
            if n_refined == n_colours:
                return refined.astype(np.int64)
            n_colours = n_refined


def reduce_equivalent_atoms(batch: Batch) -> ReducedBatch:
    """The batch (CPU tensors, with `edge_weight` from merged periodic images) with equivalent
    atoms collapsed. CrystalGNN gives the same energies on it as on `batch`, to rounding."""
    z = batch.z.numpy()
    src, dst = batch.edge_index.numpy()
    dist = batch.edge_dist.numpy()
    edge_weight = getattr(batch, "edge_weight", None)
    weight = edge_weight.numpy() if edge_weight is not None else np.ones(len(dist))
    graph = batch.batch.numpy()
    dist_key = np.rint(dist / _DISTANCE_QUANTUM).astype(np.int64)
    colour = atom_classes(z, src, dst, dist_key, np.rint(weight).astype(np.int64))

    # Classes never span graphs; np.unique sorts by graph first, so nodes stay grouped by graph.
    _, first, cls, multiplicity = np.unique(
        graph.astype(np.int64) * (int(colour.max()) + 1 if colour.size else 1) + colour,
        return_index=True,
        return_inverse=True,
        return_counts=True,
    )
    cls = cls.reshape(-1)
    is_rep = np.zeros(len(z), dtype=bool)
    is_rep[first] = True

    # Keep the edges into representatives, pointing at classes; equal ones become one edge.
    keep = is_rep[dst]
    e_dst, e_src, e_key = cls[dst[keep]], cls[src[keep]], dist_key[keep]
    n_cls = len(first)
    max_key = int(e_key.max()) + 1 if e_key.size else 1
    edge_id = (e_dst * n_cls + e_src) * max_key + e_key
    _, e_first, e_inv = np.unique(edge_id, return_index=True, return_inverse=True)
    merged_weight = np.bincount(e_inv.reshape(-1), weights=weight[keep], minlength=len(e_first))

    return ReducedBatch(
        z=torch.from_numpy(z[first]),
        edge_index=torch.from_numpy(np.stack([e_src[e_first], e_dst[e_first]])),
        edge_dist=torch.from_numpy(dist[keep][e_first]),
        edge_weight=torch.from_numpy(merged_weight),
        node_weight=torch.from_numpy(multiplicity.astype(np.float64)),
        batch=torch.from_numpy(graph[first]),
        num_graphs=int(batch.num_graphs),
    )
