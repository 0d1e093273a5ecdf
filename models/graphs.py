"""Periodic neighbour graphs built from pymatgen structures."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from pymatgen.core import Structure
from torch_geometric.data import Batch, Data

# pymatgen can report an atom as its own neighbour at zero distance; anything this close is that.
_SELF_PAIR_TOL = 1e-8
# Periodic images of one neighbour at the same distance (to this many Å) are one edge, counted.
_SAME_DISTANCE = 1e-6


def structure_to_graph(structure: Structure, cutoff: float, merge_images: bool = False) -> Data:
    """Graph with an edge j -> i for every neighbour j (any periodic image) within `cutoff` of i.

    With `merge_images`, edges that join the same pair of sites at the same distance (periodic
    images, common in symmetric cells: 1.8x on generated candidates) become one edge with
    `edge_weight` = their count. The model's messages depend only on the two sites and the
    distance, so every copy evolves identically and weighting one copy is exact."""
    if not structure.is_ordered:
        raise ValueError(f"disordered structures are not supported: {structure.formula}")
    centre, neighbour, _images, dist = structure.get_neighbor_list(cutoff)
    keep = dist > _SELF_PAIR_TOL
    edge_index = np.stack([neighbour[keep], centre[keep]]).astype(np.int64)
    dist = np.ascontiguousarray(dist[keep], dtype=np.float64)
    z = np.fromiter((site.specie.Z for site in structure), dtype=np.int64, count=len(structure))
    data = Data(z=torch.from_numpy(z), num_nodes=len(structure))
    if merge_images:
        counts: np.ndarray = np.ones(0)
        if dist.size:
            # One integer per edge (pair, then distance in units of _SAME_DISTANCE): a 1-D
            # unique is several times faster than a row-wise one.
            n = len(structure)
            pair = edge_index[0] * n + edge_index[1]
            key = pair * (int(cutoff / _SAME_DISTANCE) + 2) + np.rint(dist / _SAME_DISTANCE)
            _, first, counts = np.unique(
                key.astype(np.int64), return_index=True, return_counts=True
            )
            order = np.argsort(first)  # keep the neighbour list's order, which is deterministic
            first, counts = first[order], counts[order]
            edge_index, dist = edge_index[:, first], dist[first]
        # Always present, so that merged graphs with and without edges batch together.
        data.edge_weight = torch.from_numpy(counts.astype(np.float64))
    data.edge_index = torch.from_numpy(np.ascontiguousarray(edge_index))
    data.edge_dist = torch.from_numpy(dist)
    return data


def graphs_for(
    structures: Sequence[Structure], cutoff: float, merge_images: bool = False
) -> list[Data]:
    """One crystal graph per structure (see `structure_to_graph`)."""
    return [structure_to_graph(s, cutoff, merge_images) for s in structures]


def collate(graphs: Sequence[Data], device: torch.device) -> Batch:
    """The graphs batched into one disjoint graph on `device`."""
    return Batch.from_data_list(list(graphs)).to(device)
