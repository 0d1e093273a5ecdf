"""Universal potentials evaluated on many structures in one model call.

A batched model answers energy, forces and stress for a list of ASE atoms at once; the
batched relaxation drives one optimizer per structure and asks the model once per step
for all of them. Implementations check what they return (shapes, one answer per
structure) so a broken model fails loudly here instead of as a wrong relaxation.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import BaseCalculator

from simulators.calculators import chgnet_model, sevennet_model
from simulators.registry import get_backend, names_with, or_list, resolve

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    """One structure's answer: total energy (eV), forces (eV/Å, n×3), stress (eV/Å³, Voigt
    xx yy zz yz xz xy, ASE's sign)."""

    energy: float
    forces: np.ndarray
    stress: np.ndarray

    def __post_init__(self) -> None:
        if self.forces.ndim != 2 or self.forces.shape[1] != 3:
            raise ValueError(f"forces must be n×3, got shape {self.forces.shape}")
        if self.stress.shape != (6,):
            raise ValueError(f"stress must be Voigt 6, got shape {self.stress.shape}")


class BatchModel(Protocol):
    """Energy, forces and stress of many structures from one model call.

    A model may also set ``concurrent = True`` when several threads may call
    ``evaluate`` at once; the batched relaxation then runs one lane per torch thread.
    """

    name: str

    def evaluate(self, atoms: Sequence[Atoms]) -> list[Evaluation]: ...


def make_batch_model(name: str, device: str = "cpu", model_name: str | None = None) -> BatchModel:
    """The batched form of a registered back-end (its ``batch_factory``)."""
    backend = get_backend(name)
    if backend.batch_factory is None:
        raise ValueError(
            f"simulator {name!r} has no batched form; batched simulators: "
            + or_list(names_with(lambda b: b.can_batch))
        )
    # Each form has its own default checkpoint; pass one only when the options name it.
    kwargs = {} if model_name is None else {"model_name": model_name}
    return resolve(backend.batch_factory)(device=device, **kwargs)


def _checked(evaluations: list[Evaluation], atoms: Sequence[Atoms]) -> list[Evaluation]:
    if len(evaluations) != len(atoms):
        raise RuntimeError(f"model answered {len(evaluations)} structures for {len(atoms)}")
    for ev, a in zip(evaluations, atoms, strict=True):
        if len(ev.forces) != len(a):
            raise RuntimeError(f"model gave {len(ev.forces)} forces for {len(a)} atoms")
    return evaluations


class SevenNetBatch:
    """SevenNet-0 on a torch_geometric batch of its own atom graphs."""

    name = "sevennet"

    def __init__(self, model_name: str = "7net-0", device: str = "cpu") -> None:
        self.model = sevennet_model(model_name, device, batched=True)
        self.device = device
        # The model keeps no state between calls, so relaxation lanes may call it at once.
        # A GPU wants one big batch instead: lanes would only split it.
        self.concurrent = device == "cpu"

    def evaluate(self, atoms: Sequence[Atoms]) -> list[Evaluation]:
        import sevenn._keys as key
        from sevenn.atom_graph_data import AtomGraphData
        from sevenn.train.dataload import unlabeled_atoms_to_graph
        from torch_geometric.loader.dataloader import Collater

        # with_shift: in batch mode the model rebuilds edge vectors from positions, cell
        # and image shifts, which is how it gets stress by differentiating a strain.
        graphs = [
            AtomGraphData.from_numpy_dict(
                unlabeled_atoms_to_graph(a, self.model.cutoff, with_shift=True)
            )
            for a in atoms
        ]
        batch = Collater([], follow_batch=None, exclude_keys=None)(graphs).to(self.device)
        out = self.model(batch)
        energies = out[key.PRED_TOTAL_ENERGY].detach().cpu().numpy().astype(float)
        forces = out[key.PRED_FORCE].detach().cpu().numpy().astype(float)
        # SevenNet's order is xx yy zz xy yz zx with the opposite sign to ASE's.
        stresses = -out[key.PRED_STRESS].detach().cpu().numpy().astype(float)[:, [0, 1, 2, 4, 5, 3]]
        splits = np.cumsum([len(a) for a in atoms])[:-1]
        return _checked(
            [
                Evaluation(float(e), f, s)
                for e, f, s in zip(energies, np.split(forces, splits), stresses, strict=True)
            ],
            atoms,
        )


class CHGNetBatch:
    """CHGNet's own batched ``predict_structure`` (task "efs")."""

    name = "chgnet"

    def __init__(self, model_name: str = "0.3.0", device: str = "cpu") -> None:
        self.model = chgnet_model(model_name, device)

    def evaluate(self, atoms: Sequence[Atoms]) -> list[Evaluation]:
        from pymatgen.io.ase import AseAtomsAdaptor

        structures = [AseAtomsAdaptor.get_structure(_plain(a)) for a in atoms]
        with contextlib.redirect_stdout(io.StringIO()):
            predictions = self.model.predict_structure(
                structures, task="efs", batch_size=len(structures)
            )
        if isinstance(predictions, dict):
            predictions = [predictions]
        out = []
        for a, p in zip(atoms, predictions, strict=True):
            # CHGNet is intensive (eV/atom) and gives stress in GPa, 3×3, with ASE's sign.
            energy = float(p["e"]) * (len(a) if self.model.is_intensive else 1)
            s = np.asarray(p["s"], dtype=float) * units.GPa
            if s.shape == (3, 3):
                s = s[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
            out.append(Evaluation(energy, np.asarray(p["f"], dtype=float), s))
        return _checked(out, atoms)


class PerStructureBatch:
    """Any ASE calculator behind the batched interface, one structure at a time.

    No speed-up: it lets a back-end without a batched form (EMT, an import-path
    calculator) run through the batched relaxation, which keeps that path testable with
    cheap, deterministic physics and gives a fallback with identical semantics.
    """

    def __init__(self, calculator: BaseCalculator, name: str = "custom") -> None:
        self.calculator = calculator
        self.name = name

    def evaluate(self, atoms: Sequence[Atoms]) -> list[Evaluation]:
        out = []
        for a in atoms:
            work = a.copy()
            reset = getattr(self.calculator, "reset", None)
            if callable(reset):
                reset()
            work.calc = self.calculator
            out.append(
                Evaluation(
                    float(work.get_potential_energy()),
                    np.asarray(work.get_forces(), dtype=float),
                    np.asarray(work.get_stress(voigt=True), dtype=float),
                )
            )
        return _checked(out, atoms)


def _plain(atoms: Atoms) -> Atoms:
    """A copy without calculator or starting moments (they would become site properties)."""
    copy = atoms.copy()
    if copy.has("initial_magmoms"):
        copy.set_initial_magnetic_moments(None)
    return copy
