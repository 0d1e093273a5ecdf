"""Tests for the composition model: formula graphs, invariances, ensemble fit and checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Composition, Lattice, Structure

from models import (
    CheckpointMismatchError,
    CompositionNet,
    CompositionSettings,
    Ensemble,
    GNNSettings,
    TrainSettings,
    composition_to_graph,
)
from models.graphs import collate

# Tiny models and small cells: one torch and one BLAS thread (see conftest.single_thread).
pytestmark = pytest.mark.usefixtures("single_thread")

SMALL = CompositionSettings(hidden=32, layers=2)
FORMULAS = ["LiF", "NaCl", "MgO", "Al2O3", "SiO2", "CaTiO3", "Fe2O3", "ZnS", "GaAs", "Cu"]
TARGETS = [-3.2, -2.1, -3.0, -3.4, -3.0, -3.5, -1.7, -1.0, -0.4, 0.0]


def energy(model: CompositionNet, graphs) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(collate(graphs, torch.device("cpu")))


def test_graph_of_ternary():
    g = composition_to_graph("Li2MnO3")
    assert g.num_nodes == 3
    assert g.edge_index.shape == (2, 6)
    assert not bool((g.edge_index[0] == g.edge_index[1]).any())
    assert float(g.frac.sum()) == pytest.approx(1.0)
    assert sorted(g.z.tolist()) == [3, 8, 25]
    assert g.frac[g.z.tolist().index(8)].item() == pytest.approx(0.5)


def test_graph_of_element_has_no_edges():
    g = composition_to_graph(Composition("Cu"))
    assert g.num_nodes == 1
    assert g.edge_index.shape == (2, 0)
    assert g.frac.tolist() == [1.0]


def test_wbm_formula_spelling_is_accepted():
    g = composition_to_graph("Ba1 F8 La2")
    assert g.num_nodes == 3 and float(g.frac.sum()) == pytest.approx(1.0)


def test_prediction_invariant_to_formula_order_and_multiples():
    torch.manual_seed(0)
    model = CompositionNet(SMALL)
    graphs = [composition_to_graph(f) for f in ("LiMnO2", "Li2Mn2O4", "O2MnLi", "Mn1 Li1 O2")]
    out = energy(model, graphs)
    assert torch.allclose(out, out[0].expand_as(out), atol=1e-6)


def test_prediction_invariant_to_node_permutation():
    torch.manual_seed(1)
    model = CompositionNet(SMALL)
    g = composition_to_graph("Li2MnO3")
    perm = torch.tensor([2, 0, 1])
    inverse = torch.argsort(perm)
    shuffled = g.clone()
    shuffled.z, shuffled.frac = g.z[perm], g.frac[perm]
    shuffled.edge_index = inverse[g.edge_index]
    # Batched with a second graph so the pooling over graph ids is exercised too.
    other = composition_to_graph("NaCl")
    a, b = energy(model, [g, other]), energy(model, [shuffled, other])
    assert torch.allclose(a, b, atol=1e-6)


def test_ensemble_overfits_a_few_formulas():
    ensemble = Ensemble(SMALL, n_members=2, seed=0, device="cpu")
    train = TrainSettings(epochs=150, lr=5e-3, batch_size=5, val_fraction=0.0)
    report = ensemble.fit(FORMULAS, TARGETS, train)
    mean_predictor_mae = float(np.mean(np.abs(np.array(TARGETS) - np.mean(TARGETS))))
    assert report.train_mae < 0.2 * mean_predictor_mae
    preds = ensemble.predict([Composition(f) for f in FORMULAS])
    assert all(p.std >= 0 for p in preds)
    assert np.mean([abs(p.mean - t) for p, t in zip(preds, TARGETS, strict=True)]) == (
        pytest.approx(report.train_mae, abs=1e-6)
    )


@pytest.fixture(scope="module")
def trained() -> Ensemble:
    ensemble = Ensemble(SMALL, n_members=2, seed=3, device="cpu")
    ensemble.fit(FORMULAS, TARGETS, TrainSettings(epochs=5, batch_size=5, val_fraction=0.0))
    return ensemble


def test_checkpoint_round_trip(trained, tmp_path):
    path = tmp_path / "comp.pt"
    trained.save(path, extra={"note": "composition"})
    loaded = Ensemble.load(path, device="cpu", expect=SMALL)
    assert loaded.settings == SMALL and loaded.extra == {"note": "composition"}
    before = [(p.mean, p.std) for p in trained.predict(FORMULAS)]
    after = [(p.mean, p.std) for p in loaded.predict(FORMULAS)]
    assert np.allclose(before, after, atol=1e-7)
    # Without expectations the checkpoint says which kind it is.
    assert isinstance(Ensemble.load(path, device="cpu").settings, CompositionSettings)


def test_composition_checkpoint_refuses_crystal_config(trained, tmp_path):
    path = tmp_path / "comp.pt"
    trained.save(path)
    with pytest.raises(CheckpointMismatchError, match="composition model.*crystal model"):
        Ensemble.load(path, device="cpu", expect=GNNSettings())
    with pytest.raises(CheckpointMismatchError, match="composition model"):
        Ensemble.load(path, device="cpu", kind="crystal")
    with pytest.raises(CheckpointMismatchError, match="hidden"):
        Ensemble.load(path, device="cpu", expect=CompositionSettings(hidden=16, layers=2))


def test_crystal_ensemble_cannot_finetune_from_composition(trained):
    crystal = Ensemble(GNNSettings(hidden=16, layers=1, n_rbf=4), n_members=2, device="cpu")
    cu = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]])
    with pytest.raises(CheckpointMismatchError, match="CompositionSettings"):
        crystal.fit([cu], [0.0], TrainSettings(epochs=1), init_from=trained)


def test_checkpoint_without_kind_loads_as_crystal(tmp_path):
    """Checkpoints written before composition models existed have no 'kind' entry."""
    settings = GNNSettings(cutoff=3.0, hidden=8, layers=1, n_rbf=4)
    crystal = Ensemble(settings, n_members=1, device="cpu")
    cu = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]])
    crystal.fit([cu], [0.0], TrainSettings(epochs=1, val_fraction=0.0))
    path = tmp_path / "old.pt"
    crystal.save(path)
    payload = torch.load(path, weights_only=True)
    del payload["kind"]
    torch.save(payload, path)
    assert Ensemble.load(path, device="cpu", expect=settings).settings == settings
    with pytest.raises(CheckpointMismatchError, match="crystal model"):
        Ensemble.load(path, device="cpu", expect=SMALL)


def test_rejects_element_beyond_max_z():
    ensemble = Ensemble(CompositionSettings(hidden=8, layers=1, max_z=20), n_members=1)
    with pytest.raises(ValueError, match="max_z"):
        ensemble.fit(["FeO", "CaO"], [-1.0, -2.0], TrainSettings(epochs=1, val_fraction=0.0))
