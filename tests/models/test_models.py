"""Tests for the models package: graphs, GNN invariances, ensemble training and checkpoints."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.core.operations import SymmOp

from models import (
    CheckpointMismatchError,
    CrystalGNN,
    Ensemble,
    GNNSettings,
    TrainSettings,
    resolve_device,
    structure_to_graph,
)
from models.graphs import collate, graphs_for
from models.splits import grouped_split

# Tiny models and small cells: one torch and one BLAS thread (see conftest.single_thread).
pytestmark = pytest.mark.usefixtures("single_thread")

SMALL = GNNSettings(cutoff=4.0, hidden=32, layers=2, n_rbf=16)
QUICK = TrainSettings(epochs=30, lr=3e-3, batch_size=8, val_fraction=0.0)
ATOL = {"float32": 1e-5, "float64": 1e-10}


def fcc(element: str, a: float) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [element], [[0, 0, 0]])


def triclinic() -> Structure:
    """Low symmetry, so an invariance test cannot pass by accident of symmetry."""
    lattice = Lattice.from_parameters(4.1, 4.6, 5.2, 81, 95, 104)
    return Structure(
        lattice, ["Na", "Cl", "O"], [[0.0, 0.0, 0.0], [0.48, 0.52, 0.45], [0.1, 0.7, 0.25]]
    )


def synthetic_dataset(n: int = 30, seed: int = 0) -> tuple[list[Structure], list[float]]:
    rng = np.random.default_rng(seed)
    prototypes = ["Fm-3m", "Im-3m", "Pm-3m"]
    elements = ["Cu", "Al", "Ni", "Fe", "Na"]
    structures, targets = [], []
    for i in range(n):
        element = elements[(i // 3) % len(elements)]
        a = rng.uniform(2.6, 4.2)
        s = Structure.from_spacegroup(prototypes[i % 3], Lattice.cubic(a), [element], [[0, 0, 0]])
        structures.append(s)
        volume_per_atom = s.volume / len(s)
        targets.append(0.1 * volume_per_atom - 1.0 + 0.2 * (s[0].specie.Z % 3))
    return structures, targets


def energy(model: CrystalGNN, structure: Structure) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        batch = collate([structure_to_graph(structure, model.settings.cutoff)], torch.device("cpu"))
        return model(batch)


def predictions(ensemble: Ensemble, structures: list[Structure]) -> np.ndarray:
    return np.array([[p.mean, p.std] for p in ensemble.predict(structures)])


@pytest.fixture(scope="module")
def dataset() -> tuple[list[Structure], list[float]]:
    return synthetic_dataset()


@pytest.fixture(scope="module")
def fitted(dataset) -> tuple[Ensemble, object]:
    structures, targets = dataset
    ensemble = Ensemble(SMALL, n_members=2, seed=0, device="cpu")
    report = ensemble.fit(structures, targets, QUICK)
    return ensemble, report


# --- graphs -------------------------------------------------------------------------------


def test_fcc_graph_has_twelve_nearest_neighbours():
    a = 3.6
    graph = structure_to_graph(fcc("Cu", a), cutoff=3.0)
    assert graph.num_nodes == 4
    assert graph.z.dtype == torch.long and graph.z.tolist() == [29] * 4
    assert graph.edge_index.dtype == torch.long and graph.edge_dist.dtype == torch.float64
    src, dst = graph.edge_index
    assert torch.bincount(dst, minlength=4).tolist() == [12] * 4
    assert torch.bincount(src, minlength=4).tolist() == [12] * 4
    assert torch.allclose(graph.edge_dist, torch.full_like(graph.edge_dist, a / math.sqrt(2)))
    assert bool((graph.edge_dist > 0).all())


def test_periodic_self_images_are_edges_but_zero_distance_is_not():
    simple_cubic = Structure(Lattice.cubic(2.5), ["Po"], [[0, 0, 0]])
    graph = structure_to_graph(simple_cubic, cutoff=3.0)
    assert graph.edge_index.shape == (2, 6)
    assert bool((graph.edge_index[0] == graph.edge_index[1]).all())
    assert torch.allclose(graph.edge_dist, torch.full((6,), 2.5, dtype=torch.float64))


def test_isolated_atom_gives_finite_energy():
    lonely = Structure(Lattice.cubic(10.0), ["Cu"], [[0, 0, 0]])
    graph = structure_to_graph(lonely, cutoff=3.0)
    assert graph.edge_index.shape == (2, 0)
    assert torch.isfinite(energy(CrystalGNN(SMALL), lonely)).all()


# --- model invariances --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_energy_invariances(dtype):
    torch.manual_seed(0)
    model = CrystalGNN(GNNSettings(cutoff=4.0, hidden=32, layers=2, n_rbf=16, dtype=dtype))
    base = triclinic()
    e0 = energy(model, base)
    assert e0.shape == (1,)
    assert e0.dtype == getattr(torch, dtype)

    supercell = base.copy()
    supercell.make_supercell([2, 2, 1])
    order = [2, 0, 1]
    permuted = Structure.from_sites([base[i] for i in order])
    op = SymmOp.from_axis_angle_and_translation([1.0, 2.0, 0.5], 37.0)
    rotated = base.copy().apply_operation(op)
    assert not np.allclose(rotated.lattice.matrix, base.lattice.matrix)

    for other in (supercell, permuted, rotated):
        assert torch.allclose(energy(model, other), e0, rtol=0, atol=ATOL[dtype])

    # The invariances must not hold merely because the output ignores the structure.
    squeezed = base.copy()
    squeezed.scale_lattice(base.volume * 0.8)
    assert float((energy(model, squeezed) - e0).abs()) > 10 * ATOL["float32"]


def test_batched_forward_matches_single_graphs():
    torch.manual_seed(0)
    model = CrystalGNN(SMALL).eval()
    structures = [fcc("Cu", 3.6), triclinic(), fcc("Al", 4.0)]
    with torch.no_grad():
        batched = model(collate(graphs_for(structures, SMALL.cutoff), torch.device("cpu")))
    singles = torch.cat([energy(model, s) for s in structures])
    assert batched.shape == (3,)
    assert torch.allclose(batched, singles, atol=1e-5)


def test_float64_model():
    model = CrystalGNN(GNNSettings(cutoff=4.0, hidden=16, layers=1, n_rbf=8, dtype="float64"))
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert energy(model, fcc("Cu", 3.6)).dtype == torch.float64


def test_reset_parameters_changes_weights():
    model = CrystalGNN(SMALL)
    before = [p.detach().clone() for p in model.parameters()]
    model.reset_parameters()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


# --- ensemble training --------------------------------------------------------------------


def test_fit_beats_mean_baseline(fitted, dataset):
    ensemble, report = fitted
    _, targets = dataset
    baseline = float(np.mean(np.abs(np.asarray(targets) - np.mean(targets))))
    assert report.n_train == 30 and report.n_val == 0 and report.val_mae is None
    assert report.epochs_run == [QUICK.epochs, QUICK.epochs]
    assert report.train_mae < 0.25 * baseline
    assert ensemble.is_trained


def test_predictions_have_spread_and_match_report(fitted, dataset):
    ensemble, report = fitted
    structures, targets = dataset
    preds = predictions(ensemble, structures)
    assert (preds[:, 1] > 0).all()
    assert np.mean(np.abs(preds[:, 0] - targets)) == pytest.approx(report.train_mae, rel=1e-5)


def test_fit_is_deterministic_per_seed(fitted, dataset):
    structures, targets = dataset
    ensemble, _ = fitted
    same = Ensemble(SMALL, n_members=2, seed=0, device="cpu")
    same.fit(structures, targets, QUICK)
    other = Ensemble(SMALL, n_members=2, seed=1, device="cpu")
    other.fit(structures, targets, QUICK)
    reference = predictions(ensemble, structures[:8])
    np.testing.assert_array_equal(predictions(same, structures[:8]), reference)
    assert not np.allclose(predictions(other, structures[:8]), reference)


def test_early_stopping_uses_grouped_validation(dataset):
    structures, targets = dataset
    ensemble = Ensemble(SMALL, n_members=1, seed=3, device="cpu")
    train = TrainSettings(epochs=40, batch_size=8, val_fraction=0.3, patience=2)
    report = ensemble.fit(structures, targets, train)
    assert report.n_val > 0 and report.n_train + report.n_val == len(structures)
    assert report.val_mae is not None
    assert 1 <= report.epochs_run[0] <= train.epochs


def test_grouped_split_keeps_formulas_apart():
    formulas = ["A", "A", "B", "B", "B", "C", "D", "D", "E", "F"]
    train, val = grouped_split(formulas, 0.3, seed=0)
    assert sorted(train + val) == list(range(len(formulas)))
    assert val and {formulas[i] for i in train}.isdisjoint({formulas[i] for i in val})
    # Too few samples or a single formula: no validation split.
    assert grouped_split(formulas[:5], 0.3, seed=0)[1] == []
    assert grouped_split(["A"] * 20, 0.3, seed=0)[1] == []
    assert grouped_split(formulas, 0.0, seed=0)[1] == []


def test_fine_tune_from_previous_ensemble(fitted, dataset):
    parent, _ = fitted
    structures, targets = dataset
    # At a negligible learning rate a fine-tune must reproduce the parent, a fresh fit cannot.
    still = TrainSettings(epochs=1, lr=1e-9, val_fraction=0.0)
    child = Ensemble(SMALL, n_members=2, seed=5, device="cpu")
    child.fit(structures, targets, still, init_from=parent)
    np.testing.assert_allclose(
        predictions(child, structures), predictions(parent, structures), atol=1e-5
    )
    fresh = Ensemble(SMALL, n_members=2, seed=5, device="cpu")
    fresh.fit(structures, targets, still)
    assert not np.allclose(
        predictions(fresh, structures), predictions(parent, structures), atol=1e-2
    )

    wider = Ensemble(GNNSettings(cutoff=4.0, hidden=48, layers=2, n_rbf=16), n_members=2)
    with pytest.raises(CheckpointMismatchError, match="hidden"):
        wider.fit(structures, targets, QUICK, init_from=parent)
    more = Ensemble(SMALL, n_members=3, device="cpu")
    with pytest.raises(CheckpointMismatchError, match="n_members"):
        more.fit(structures, targets, QUICK, init_from=parent)


def test_bad_inputs_are_rejected(dataset):
    structures, targets = dataset
    ensemble = Ensemble(SMALL, n_members=1, device="cpu")
    with pytest.raises(RuntimeError, match="not trained"):
        ensemble.predict(structures[:2])
    with pytest.raises(ValueError, match="lengths must match"):
        ensemble.fit(structures, targets[:-1], QUICK)
    with pytest.raises(ValueError, match="empty"):
        ensemble.fit([], [], QUICK)
    with pytest.raises(ValueError, match="weights; lengths must match"):
        ensemble.fit(structures, targets, QUICK, weights=[1.0])
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite and > 0"):
            ensemble.fit(structures, targets, QUICK, weights=[1.0] * (len(targets) - 1) + [bad])
    assert not ensemble.is_trained


def test_the_heavily_weighted_of_two_conflicting_labels_wins():
    """The same two structures labelled twice, 0 and 1 eV/atom: weighted 9:1, the fit lands
    near the weighted mean (0.1), not the plain one (0.5)."""
    structures = [fcc("Cu", 3.6), fcc("Al", 4.0)] * 4
    targets = [0.0, 0.0, 1.0, 1.0] * 2
    weights = [9.0, 9.0, 1.0, 1.0] * 2
    train = TrainSettings(epochs=60, lr=1e-2, batch_size=8, val_fraction=0.0, patience=60)
    ensemble = Ensemble(SMALL, n_members=1, seed=0, device="cpu")
    ensemble.fit(structures, targets, train, weights=weights)
    heavy = predictions(ensemble, structures[:2])[:, 0]
    assert heavy == pytest.approx([0.1, 0.1], abs=0.05)
    flipped = Ensemble(SMALL, n_members=1, seed=0, device="cpu")
    flipped.fit(structures, targets, train, weights=[1.0, 1.0, 9.0, 9.0] * 2)
    assert predictions(flipped, structures[:2])[:, 0] == pytest.approx([0.9, 0.9], abs=0.05)


# --- checkpoints --------------------------------------------------------------------------


def test_save_load_roundtrip(fitted, dataset, tmp_path):
    ensemble, _ = fitted
    structures, _ = dataset
    path = tmp_path / "nested" / "ensemble.pt"
    ensemble.save(path, extra={"data_ids": [1, 2, 3], "mae": np.float64(0.05)})
    assert not list(path.parent.glob("*.tmp"))

    loaded = Ensemble.load(path, device="cpu", expect=SMALL)
    assert loaded.is_trained and loaded.n_members == 2
    assert loaded.extra == {"data_ids": [1, 2, 3], "mae": 0.05}
    np.testing.assert_array_equal(
        predictions(loaded, structures), predictions(ensemble, structures)
    )


def test_load_with_mismatched_settings_names_the_field(fitted, tmp_path):
    ensemble, _ = fitted
    path = tmp_path / "ensemble.pt"
    ensemble.save(path)
    wanted = GNNSettings(cutoff=4.0, hidden=128, layers=2, n_rbf=16)
    with pytest.raises(
        CheckpointMismatchError, match="checkpoint has hidden=32, config asks hidden=128"
    ):
        Ensemble.load(path, device="cpu", expect=wanted)


def test_settings_dict_roundtrip():
    settings = GNNSettings(hidden=16, dtype="float64")
    assert GNNSettings.from_dict(settings.to_dict()) == settings
    assert TrainSettings.from_dict(QUICK.to_dict()) == QUICK
    with pytest.raises(ValueError, match="hiden"):
        GNNSettings.from_dict({"hiden": 3})
    with pytest.raises(ValueError):
        GNNSettings(layers=0)


# --- devices ------------------------------------------------------------------------------


def test_resolve_device_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")


def test_resolve_cuda_without_cuda_raises():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:0")


@pytest.mark.gpu
def test_cuda_fit_and_predict_match_cpu(dataset):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    structures, targets = dataset
    settings = GNNSettings(cutoff=4.0, hidden=32, layers=2, n_rbf=16, dtype="float64")
    train = TrainSettings(epochs=5, batch_size=8, val_fraction=0.0)
    results = []
    for device in ("cpu", "cuda"):
        ensemble = Ensemble(settings, n_members=2, seed=0, device=device)
        ensemble.fit(structures, targets, train)
        assert next(ensemble.members[0].parameters()).device.type == device
        results.append(predictions(ensemble, structures))
    np.testing.assert_allclose(results[1], results[0], atol=1e-4)


def test_on_epoch_reports_every_epoch_in_ev_and_can_stop_training():
    structures, targets = synthetic_dataset(24)
    seen = []
    ensemble = Ensemble(SMALL, n_members=2, seed=0, device="cpu")
    train = TrainSettings(epochs=3, lr=3e-3, batch_size=8, val_fraction=0.3, patience=10)
    ensemble.fit(structures, targets, train, on_epoch=seen.append)
    assert [(log.member, log.epoch) for log in seen] == [
        (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)
    ]  # fmt: skip
    assert all(log.val_mae is not None and 0 < log.val_mae < 10 for log in seen)
    assert all(log.train_loss > 0 for log in seen)

    class Stop(Exception):
        pass

    def stop(log):
        raise Stop

    with pytest.raises(Stop):
        ensemble.fit(structures, targets, train, on_epoch=stop)
    assert not ensemble.is_trained


# --- acceptance: overfitting, identical members, calibration, test-time augmentation ---------


def test_tiny_gnn_overfits_eight_structures():
    structures, targets = synthetic_dataset(8, seed=5)
    ensemble = Ensemble(GNNSettings(cutoff=4.0, hidden=32, layers=3, n_rbf=16), 1, seed=0)
    train = TrainSettings(epochs=300, lr=3e-3, batch_size=8, val_fraction=0.0, patience=300)
    report = ensemble.fit(structures, targets, train)
    spread = float(np.mean(np.abs(np.asarray(targets) - np.mean(targets))))
    assert report.train_mae < 0.02 * spread


def test_identical_members_have_zero_spread(fitted, dataset):
    ensemble, _ = fitted
    structures, _ = dataset
    clone = copy.deepcopy(ensemble)
    clone.members[1].load_state_dict(clone.members[0].state_dict())
    preds = predictions(clone, structures)
    assert np.all(preds[:, 1] == 0.0)
    # Member 0 alone is what the clone's mean must be.
    solo = copy.deepcopy(clone)
    solo.members, solo.n_members = solo.members[:1], 1
    np.testing.assert_allclose(preds[:, 0], predictions(solo, structures)[:, 0], atol=1e-6)


def test_variance_scale_is_fitted_on_validation_and_saved(dataset, tmp_path):
    structures, targets = dataset
    ensemble = Ensemble(SMALL, n_members=3, seed=0, device="cpu")
    train = TrainSettings(epochs=10, lr=3e-3, batch_size=8, val_fraction=0.3, patience=10)
    report = ensemble.fit(structures, targets, train)
    assert report.variance_scale == ensemble.variance_scale
    assert report.variance_scale > 0 and report.variance_scale != 1.0
    assert {"spearman_abs_err_std", "miscalibration_area", "nll"} <= set(report.calibration)
    scaled = predictions(ensemble, structures)
    raw_std = ensemble._predict_graphs(ensemble._graphs(structures), 64)[1].numpy()
    np.testing.assert_allclose(scaled[:, 1], raw_std * report.variance_scale, rtol=1e-9)
    ensemble.save(tmp_path / "e.pt")
    loaded = Ensemble.load(tmp_path / "e.pt", device="cpu")
    assert loaded.variance_scale == ensemble.variance_scale


def test_volume_augmentation(fitted, dataset):
    ensemble, _ = fitted
    structures, _ = dataset
    plain = predictions(ensemble, structures)
    one = ensemble.predict(structures, volume_scales=[1.0])
    np.testing.assert_allclose([p.mean for p in one], plain[:, 0], atol=1e-6)
    scales = [0.8, 0.9, 1.0, 1.1, 1.2]
    mean = ensemble.predict(structures, volume_scales=scales, aggregate="mean")
    low = ensemble.predict(structures, volume_scales=scales, aggregate="min")
    assert all(a.mean <= b.mean + 1e-9 for a, b in zip(low, mean, strict=True))
    assert any(abs(a.mean - p) > 1e-4 for a, p in zip(mean, plain[:, 0], strict=True))
    # The inputs are not changed in place.
    assert [s.volume for s in structures] == [s.volume for s in dataset[0]]
    with pytest.raises(ValueError, match="aggregate"):
        ensemble.predict(structures, volume_scales=scales, aggregate="max")


def test_validation_mae_is_weighted_like_the_loss():
    from models.training import _weighted_mae

    pred, target = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 3.0])
    assert _weighted_mae(pred, target, None) == pytest.approx(2.0)
    assert _weighted_mae(pred, target, torch.tensor([3.0, 1.0])) == pytest.approx(1.5)
