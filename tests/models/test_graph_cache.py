"""Crystal graphs cached by structure hash: in memory and in the campaign's SQL store."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from discovery.store import Database
from discovery.store.cached_graphs import StoreGraphCache
from discovery.store.convert import structure_from_json
from models import Ensemble, GNNSettings, TrainSettings
from models.graph_cache import (
    MemoryGraphCache,
    crystal_graphs,
    decode_graph,
    encode_graph,
    graph_key,
    structure_hash,
)
from models.graphs import structure_to_graph

CUTOFF = 4.5


# Tiny models: one torch thread (see conftest.single_thread).
pytestmark = pytest.mark.usefixtures("single_thread")


def crystals() -> list[Structure]:
    rocksalt = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.3), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    tri = Structure(
        Lattice.from_parameters(4.1, 4.6, 5.2, 81, 95, 104),
        ["Na", "Cl", "O"],
        [[0.0, 0.0, 0.0], [0.48, 0.52, 0.45], [0.1, 0.7, 0.25]],
    )
    lonely = Structure(Lattice.cubic(9.0), ["Cu"], [[0, 0, 0]])
    return [rocksalt, tri, lonely]


def same_graph(a, b) -> bool:
    return (
        torch.equal(a.z, b.z)
        and torch.equal(a.edge_index, b.edge_index)
        and torch.equal(a.edge_dist, b.edge_dist)
        and torch.equal(a.edge_weight, b.edge_weight)
    )


def test_hash_survives_the_store_round_trip_and_tells_structures_apart():
    rocksalt, tri, _ = crystals()
    stored = json.loads(json.dumps(tri.as_dict()))  # what the store's JSON column keeps
    assert structure_hash(structure_from_json(stored)) == structure_hash(tri)
    shifted = tri.copy()
    shifted.translate_sites([0], [1.0, 0.0, 0.0])  # a lattice translation: the same crystal
    assert structure_hash(shifted) == structure_hash(tri)
    moved = tri.copy()
    moved.translate_sites([0], [0.01, 0.0, 0.0])
    assert structure_hash(moved) != structure_hash(tri)
    assert graph_key(tri, 4.5, True) != graph_key(tri, 5.0, True)
    assert structure_hash(rocksalt) != structure_hash(tri)


def test_encode_decode_round_trip():
    for structure in crystals():
        for merge in (True, False):
            graph = structure_to_graph(structure, CUTOFF, merge_images=merge)
            back = decode_graph(encode_graph(graph))
            assert torch.equal(back.edge_index, graph.edge_index)
            assert torch.equal(back.edge_dist, graph.edge_dist)
            assert back.num_nodes == graph.num_nodes
            assert (back.edge_weight is not None) == merge


def test_memory_cache_builds_once_and_returns_the_same_graphs(monkeypatch):
    cache = MemoryGraphCache()
    first = crystal_graphs(crystals(), CUTOFF, cache)
    assert len(cache.entries) == 3

    def refuse(*args, **kwargs):
        raise AssertionError("a cached graph was rebuilt")

    monkeypatch.setattr("models.graph_cache.structure_to_graph", refuse)
    again = crystal_graphs(crystals(), CUTOFF, cache)
    assert all(same_graph(a, b) for a, b in zip(first, again, strict=True))


def test_store_cache_and_ensemble_predictions(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    cache = StoreGraphCache(db)
    structures = crystals()
    ensemble = Ensemble(GNNSettings(cutoff=CUTOFF, hidden=16, layers=2, n_rbf=12), 2, seed=0)
    train = TrainSettings(epochs=3, batch_size=2, val_fraction=0.0)
    ensemble.fit(structures, [-0.5, -1.0, 0.0], train, graph_cache=cache)
    assert len(cache.get_many([graph_key(s, CUTOFF, True) for s in structures])) == 3
    cache.put_many({graph_key(structures[0], CUTOFF, True): b"ignored: already there"})
    cached = ensemble.predict(structures, graph_cache=cache)
    plain = ensemble.predict(structures)
    np.testing.assert_array_equal([p.mean for p in cached], [p.mean for p in plain])
    db.dispose()
