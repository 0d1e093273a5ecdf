"""Collapsing equivalent atoms (models.orbits) must not change the GNN's energies or gradients."""

from __future__ import annotations

import pytest
import torch
from pymatgen.core import Lattice, Structure

from models import CrystalGNN, GNNSettings
from models.graphs import collate, graphs_for
from models.orbits import reduce_equivalent_atoms

SETTINGS = GNNSettings(cutoff=4.5, hidden=16, layers=3, n_rbf=12, dtype="float64")
CPU = torch.device("cpu")


# Tiny models: one torch thread (see conftest.single_thread).
pytestmark = pytest.mark.usefixtures("single_thread")


def rocksalt() -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def spinel() -> Structure:
    return Structure.from_spacegroup(
        "Fd-3m",
        Lattice.cubic(8.1),
        ["Mg", "Al", "O"],
        [[0.125, 0.125, 0.125], [0.5, 0.5, 0.5], [0.26, 0.26, 0.26]],
    )


def low_symmetry() -> Structure:
    lattice = Lattice.from_parameters(4.1, 4.6, 5.2, 81, 95, 104)
    return Structure(
        lattice, ["Na", "Cl", "O"], [[0.0, 0.0, 0.0], [0.48, 0.52, 0.45], [0.1, 0.7, 0.25]]
    )


def mixed_batch() -> list[Structure]:
    supercell = rocksalt() * (2, 2, 1)
    rattled = spinel()
    rattled.perturb(0.05, seed=3)
    lonely = Structure(Lattice.cubic(10.0), ["Cu", "Cu"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return [supercell, spinel(), low_symmetry(), rattled, lonely]


def batch_of(structures: list[Structure]):
    return collate(graphs_for(structures, SETTINGS.cutoff, merge_images=True), CPU)


def test_supercell_of_rocksalt_collapses_to_its_two_species():
    structures = [rocksalt() * (2, 2, 2)]
    reduced = reduce_equivalent_atoms(batch_of(structures))
    assert sorted(reduced.z.tolist()) == [8, 12]
    assert reduced.node_weight.tolist() == [len(structures[0]) / 2] * 2


def test_classes_follow_the_symmetry_orbits():
    # The conventional spinel cell: one orbit per species (8, 16 and 32 sites).
    cell = spinel()
    reduced = reduce_equivalent_atoms(batch_of([cell]))
    counts = cell.composition.element_composition
    pairs = zip(reduced.z.tolist(), reduced.node_weight.tolist(), strict=True)
    assert sorted(pairs) == sorted((el.Z, counts[el]) for el in counts)
    # Without symmetry nothing collapses.
    assert len(reduce_equivalent_atoms(batch_of([low_symmetry()])).z) == len(low_symmetry())


def test_energies_and_gradients_are_unchanged():
    torch.manual_seed(0)
    model = CrystalGNN(SETTINGS)
    batch = batch_of(mixed_batch())
    reduced = reduce_equivalent_atoms(batch)
    assert len(reduced.z) < batch.num_nodes
    full_energy, reduced_energy = model(batch), model(reduced)
    assert torch.allclose(full_energy, reduced_energy, rtol=0, atol=1e-10)
    params = list(model.parameters())
    full_grad = torch.autograd.grad(full_energy.sum(), params)
    reduced_grad = torch.autograd.grad(reduced_energy.sum(), params)
    for a, b in zip(full_grad, reduced_grad, strict=True):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-10)
    with torch.inference_mode():
        assert torch.allclose(model(reduced), full_energy.detach(), rtol=0, atol=1e-10)


def test_batches_keep_graphs_apart():
    # Two identical crystals in one batch are still two graphs with their own energies.
    structures = [rocksalt(), rocksalt(), rocksalt() * (1, 1, 2)]
    reduced = reduce_equivalent_atoms(batch_of(structures))
    assert reduced.batch.tolist() == [0, 0, 1, 1, 2, 2]
    torch.manual_seed(1)
    energies = CrystalGNN(SETTINGS)(reduced)
    assert torch.allclose(energies, energies[0].expand(3), rtol=0, atol=1e-10)
