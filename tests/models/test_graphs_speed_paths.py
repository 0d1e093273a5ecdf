"""The screening (in-place, chunked) and training (autograd) paths of CrystalGNN must agree."""

from __future__ import annotations

import pytest
import torch
from pymatgen.core import Lattice, Structure

import models.layers as layers
from models import CrystalGNN, GNNSettings
from models.graphs import collate, graphs_for

SETTINGS = {
    "float32": GNNSettings(cutoff=4.0, hidden=16, layers=2, n_rbf=12),
    "float64": GNNSettings(cutoff=4.0, hidden=16, layers=2, n_rbf=12, dtype="float64"),
}
ATOL = {"float32": 1e-5, "float64": 1e-12}


# Tiny models: one torch thread (see conftest.single_thread).
pytestmark = pytest.mark.usefixtures("single_thread")


def structures() -> list[Structure]:
    lattice = Lattice.from_parameters(4.1, 4.6, 5.2, 81, 95, 104)
    tri = Structure(
        lattice, ["Na", "Cl", "O"], [[0.0, 0.0, 0.0], [0.48, 0.52, 0.45], [0.1, 0.7, 0.25]]
    )
    rocksalt = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    lonely = Structure(Lattice.cubic(10.0), ["Cu"], [[0, 0, 0]])  # a graph without edges
    return [tri, rocksalt, lonely]


def batch_for(settings: GNNSettings):
    return collate(graphs_for(structures(), settings.cutoff), torch.device("cpu"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("chunk", [1, 7, 1_000_000])
def test_in_place_path_matches_autograd_path(dtype, chunk, monkeypatch):
    # Chunks of 1 and 7 edges split every graph's edges across chunks and leave a ragged tail.
    monkeypatch.setattr(layers, "_EDGE_CHUNK", chunk)
    settings = SETTINGS[dtype]
    torch.manual_seed(0)
    model = CrystalGNN(settings).eval()
    batch = batch_for(settings)
    assert batch.edge_index.shape[1] > 7
    with torch.enable_grad():
        reference = model(batch)  # parameters require grad: the autograd path
    assert reference.requires_grad
    with torch.inference_mode():
        screened = model(batch)
    with torch.no_grad():
        no_grad = model(batch)
    assert screened.dtype == reference.dtype == getattr(torch, dtype)
    torch.testing.assert_close(screened, reference.detach(), rtol=0, atol=ATOL[dtype])
    torch.testing.assert_close(no_grad, screened, rtol=0, atol=ATOL[dtype])


def test_in_place_path_leaves_inputs_alone():
    settings = SETTINGS["float32"]
    torch.manual_seed(0)
    block = layers.InteractionBlock(settings.hidden)
    n_nodes, n_edges = 5, 23
    h = torch.randn(n_nodes, settings.hidden)
    e = torch.randn(n_edges, settings.hidden)
    envelope = torch.rand(n_edges)
    edge_index = torch.randint(0, n_nodes, (2, n_edges))
    inputs = [t.clone() for t in (h, e, envelope, edge_index)]
    with torch.no_grad():
        block(h, e, envelope, edge_index)
    for before, after in zip(inputs, (h, e, envelope, edge_index), strict=True):
        assert torch.equal(before, after)


def test_gradients_flow_to_distances():
    """Derivatives with respect to distances (for forces) must still work: in-place ops on the
    radial basis would break autograd there."""
    settings = SETTINGS["float64"]
    model = CrystalGNN(settings)
    batch = batch_for(settings)
    batch.edge_dist = batch.edge_dist.clone().requires_grad_(True)
    model(batch).sum().backward()
    assert batch.edge_dist.grad is not None
    assert torch.isfinite(batch.edge_dist.grad).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rbf_clamp_only_touches_negligible_values(dtype):
    rbf = layers.GaussianRBF(32, 5.0).to(getattr(torch, dtype))
    dist = torch.linspace(0.0, 5.0, 501, dtype=getattr(torch, dtype))
    exact = torch.exp(-rbf.gamma * (dist.unsqueeze(-1) - rbf.centres).square())
    with torch.no_grad():
        clamped = rbf(dist)
    assert (clamped - exact).abs().max() < 1e-30
    # Every distance in range keeps a Gaussian near its peak, so the clamp is far below rounding.
    assert clamped.max(dim=-1).values.min() > 0.7


def test_merged_periodic_images_give_the_same_energies():
    from pymatgen.core import Lattice, Structure

    from models import CrystalGNN, GNNSettings
    from models.graphs import collate, structure_to_graph

    fcc = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]])
    fcc = fcc.get_primitive_structure()
    tri = Structure(
        Lattice.from_parameters(4.1, 4.6, 5.2, 81, 95, 104),
        ["Na", "Cl", "O"],
        [[0, 0, 0], [0.48, 0.52, 0.45], [0.1, 0.7, 0.25]],
    )
    lonely = Structure(Lattice.cubic(12.0), ["He"], [[0, 0, 0]])  # no edges at all
    structures = [fcc, fcc * (2, 2, 1), tri, lonely]
    raw = [structure_to_graph(s, 5.0) for s in structures]
    merged = [structure_to_graph(s, 5.0, merge_images=True) for s in structures]
    assert merged[0].edge_index.shape[1] == 3 and raw[0].edge_index.shape[1] == 42
    for r, m in zip(raw, merged, strict=True):
        assert float(m.edge_weight.sum()) == r.edge_index.shape[1]
    model = CrystalGNN(GNNSettings(dtype="float64")).eval()
    cpu = torch.device("cpu")
    with torch.no_grad():
        a = model(collate(raw, cpu))
        b = model(collate(merged, cpu))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # and gradients (training) agree too
    model.train()
    ga = torch.autograd.grad(model(collate(raw, cpu)).sum(), list(model.parameters()))
    gb = torch.autograd.grad(model(collate(merged, cpu)).sum(), list(model.parameters()))
    for x, y in zip(ga, gb, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12)
