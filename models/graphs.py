"""Periodic neighbour graphs built from pymatgen structures."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from pymatgen.core import Structure
from torch_geometric.data import Batch, Data

# pymatgen can report an atom as its own neighbour at zero distance; anything this close is that.
_SELF_PAIR_TOL = 1e-8


def structure_to_graph(structure: Structure, cutoff: float) -> Data:
    """Graph with an edge j -> i for every neighbour j (any periodic image) within `cutoff` of i."""
    if not structure.is_ordered:
        raise ValueError(f"disordered structures are not supported: {structure.formula}")
    centre, neighbour, _images, dist = structure.get_neighbor_list(cutoff)
    keep = dist > _SELF_PAIR_TOL
    edge_index = np.stack([neighbour[keep], centre[keep]]).astype(np.int64)
    z = np.fromiter((site.specie.Z for site in structure), dtype=np.int64, count=len(structure))
    return Data(
        z=torch.from_numpy(z),
        edge_index=torch.from_numpy(edge_index),
        edge_dist=torch.from_numpy(np.ascontiguousarray(dist[keep], dtype=np.float64)),
        num_nodes=len(structure),
    )


def graphs_for(structures: Sequence[Structure], cutoff: float) -> list[Data]:
    return [structure_to_graph(s, cutoff) for s in structures]


def collate(graphs: Sequence[Data], device: torch.device) -> Batch:
    return Batch.from_data_list(list(graphs)).to(device)
