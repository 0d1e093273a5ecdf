"""Crystal graphs cached by structure hash, so a structure's neighbour list is built once.

Every round retrains on everything validated so far and rescreens the open pool; without a
cache the same graphs are rebuilt each time. The cache is a mapping from a key (structure hash
plus the graph settings) to an encoded graph; where it lives is the caller's business (the
campaign keeps it in its SQL store, tests in a dict).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Protocol

import numpy as np
import torch
from pymatgen.core import Structure
from torch_geometric.data import Data

from models.graphs import graphs_for, structure_to_graph

# Bump when the graph layout or the builder changes, so that old entries are never reused.
GRAPH_FORMAT = 1
# Coordinates are hashed at this resolution (Å, and fractional): far below any physical change,
# far above float noise from a JSON round trip.
_DECIMALS = 6


def structure_hash(structure: Structure) -> str:
    """Identical for the same lattice, species and sites in the same order."""
    lattice = np.round(structure.lattice.matrix, _DECIMALS) + 0.0  # +0.0 folds -0.0 into 0.0
    frac = np.round(np.mod(structure.frac_coords, 1.0), _DECIMALS) + 0.0
    # A coordinate of 0.9999999 wraps to 1.0 after rounding: fold it back onto 0.
    frac[frac >= 1.0] = 0.0
    z = np.array([site.specie.Z for site in structure], dtype=np.int64)
    digest = hashlib.blake2b(digest_size=16)
    for part in (lattice, frac, z):
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


def graph_key(structure: Structure, cutoff: float, merge_images: bool) -> str:
    """The cache key of a structure's graph: format version, structure hash, cutoff and
    whether periodic images are merged."""
    return f"g{GRAPH_FORMAT}:{structure_hash(structure)}:{cutoff:.6g}:{int(merge_images)}"


def encode_graph(graph: Data) -> bytes:
    """A crystal graph as compact bytes (header, atomic numbers, edges, distances and the
    optional edge weights) for the graph cache."""
    z = graph.z.numpy().astype(np.int64)
    edge_index = graph.edge_index.numpy().astype(np.int64)
    dist = graph.edge_dist.numpy().astype(np.float64)
    weight = getattr(graph, "edge_weight", None)
    has_weight = weight is not None
    header = np.array([len(z), dist.size, int(has_weight)], dtype=np.int64)
    parts = [header, z, edge_index.reshape(-1), dist]
    if weight is not None:
        parts.append(weight.numpy().astype(np.float64))
    return b"".join(np.ascontiguousarray(p).tobytes() for p in parts)


def decode_graph(payload: bytes) -> Data:
    """The graph `encode_graph` wrote."""
    n_nodes, n_edges, has_weight = np.frombuffer(payload, dtype=np.int64, count=3)
    offset = 3 * 8

    def take(dtype, count: int) -> np.ndarray:
        nonlocal offset
        out = np.frombuffer(payload, dtype=dtype, count=count, offset=offset).copy()
        offset += count * 8
        return out

    z = take(np.int64, int(n_nodes))
    edge_index = take(np.int64, 2 * int(n_edges)).reshape(2, -1)
    dist = take(np.float64, int(n_edges))
    data = Data(z=torch.from_numpy(z), num_nodes=int(n_nodes))
    if has_weight:
        data.edge_weight = torch.from_numpy(take(np.float64, int(n_edges)))
    data.edge_index = torch.from_numpy(edge_index)
    data.edge_dist = torch.from_numpy(dist)
    return data


class GraphCache(Protocol):
    def get_many(self, keys: Iterable[str]) -> Mapping[str, bytes]: ...

    def put_many(self, entries: Mapping[str, bytes]) -> None: ...


class MemoryGraphCache:
    """A dict; for tests and one-off scripts."""

    def __init__(self) -> None:
        self.entries: dict[str, bytes] = {}

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        return {k: self.entries[k] for k in keys if k in self.entries}

    def put_many(self, entries: Mapping[str, bytes]) -> None:
        self.entries.update(entries)


def crystal_graphs(
    structures: list[Structure], cutoff: float, cache: GraphCache | None = None
) -> list[Data]:
    """Graphs with merged periodic images (what the crystal model reads), from `cache` where
    present; the ones built here are added to it."""
    if cache is None:
        return graphs_for(structures, cutoff, merge_images=True)
    keys = [graph_key(s, cutoff, merge_images=True) for s in structures]
    found = cache.get_many(set(keys))
    built: dict[str, bytes] = {}
    graphs = []
    for key, structure in zip(keys, structures, strict=True):
        payload = found.get(key) or built.get(key)
        if payload is None:
            graph = structure_to_graph(structure, cutoff, merge_images=True)
            built[key] = encode_graph(graph)
            graphs.append(graph)
        else:
            graphs.append(decode_graph(payload))
    if built:
        cache.put_many(built)
    return graphs
