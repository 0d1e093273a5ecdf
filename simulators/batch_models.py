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
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from ase import Atoms, units
from ase.calculators.calculator import BaseCalculator
from torch import fx

from simulators.calculators import chgnet_model, sevennet_model

logger = logging.getLogger(__name__)

BATCHED_SIMULATORS = ("sevennet", "chgnet")


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
    """The batched form of a built-in universal potential."""
    if name == "sevennet":
        return SevenNetBatch(model_name or "7net-0", device)
    if name == "chgnet":
        return CHGNetBatch(model_name or "0.3.0", device)
    valid = ", ".join(repr(n) for n in BATCHED_SIMULATORS)
    raise ValueError(f"simulator {name!r} has no batched form; batched simulators: {valid}")


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
    # The model keeps no state between calls, so relaxation lanes may call it at once.
    concurrent = True

    def __init__(self, model_name: str = "7net-0", device: str = "cpu") -> None:
        self.model = sevennet_model(model_name, device, batched=True)
        self.device = device
        split_weight_slices(self.model)

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


def split_weight_slices(model: torch.nn.Module) -> int:
    """Rewrite e3nn's generated tensor-product code to cut its inputs with one split.

    The generated code slices the per-edge weights (E × 960 for SevenNet-0) once per path,
    and the backward pass of every slice allocates and zero-fills a full E × 960 gradient
    before the slices' gradients are summed: a third of a SevenNet-0 force evaluation on
    a batch of small cells. One ``split_with_sizes`` per input gives the same views, whose
    backward is one concatenation. Unused outer products the generator leaves behind are
    dropped. Forward values are unchanged bit for bit. Applied once per model; returns the
    number of tensors rewritten.
    """
    from e3nn.o3 import TensorProduct

    if getattr(model, "_weight_slices_split", False):
        return 0
    rewritten = 0
    for module in model.modules():
        if not isinstance(module, TensorProduct):
            continue
        for child in module.children():
            if isinstance(child, fx.GraphModule):
                rewritten += _rewrite_graph(child)
    model._weight_slices_split = True
    return rewritten


# Node targets that compute a value and nothing else: safe to drop when unused. (fx's own
# eliminate_dead_code also drops e3nn's in-place ``out[..., a:b] = x`` copies.)
_PURE_FUNCTIONS = {torch.einsum, torch.functional.einsum, operator.getitem}
_PURE_METHODS = {"reshape", "view", "expand", "narrow"}


def _rewrite_graph(gm: fx.GraphModule) -> int:
    graph = gm.graph
    _drop_unused(graph)
    rewritten = 0
    for node in list(graph.nodes):
        by_dim: dict[int, list[tuple[int, int, fx.Node]]] = {}
        for user in list(node.users):
            if (
                user.op == "call_function"
                and user.target is operator.getitem
                and user.args[0] is node
                and (spec := _trailing_slice(user.args[1])) is not None
            ):
                dim, start, stop = spec
                by_dim.setdefault(dim, []).append((start, stop, user))
        for dim, cuts in by_dim.items():
            cuts.sort(key=lambda c: (c[0], c[1]))
            # Only disjoint slices map onto one split; anything else is left as it was.
            if len(cuts) < 2 or any(a[1] > b[0] for a, b in zip(cuts, cuts[1:], strict=False)):
                continue
            bounds = tuple((start, stop) for start, stop, _ in cuts)
            with graph.inserting_after(node):
                split = graph.call_function(_disjoint_slices, (node, dim, bounds))
            for k, (_, _, user) in enumerate(cuts):
                with graph.inserting_after(split):
                    piece = graph.call_function(operator.getitem, (split, k))
                user.replace_all_uses_with(piece)
                graph.erase_node(user)
            rewritten += 1
    graph.lint()
    gm.recompile()
    return rewritten


def _drop_unused(graph: fx.Graph) -> None:
    changed = True
    while changed:
        changed = False
        for node in reversed(list(graph.nodes)):
            pure = (node.op == "call_function" and node.target in _PURE_FUNCTIONS) or (
                node.op == "call_method" and node.target in _PURE_METHODS
            )
            if pure and not node.users:
                graph.erase_node(node)
                changed = True


def _trailing_slice(index: Any) -> tuple[int, int, int] | None:
    """(dim, start, stop) for ``x[..., a:b]`` or ``x[:, ..., :, a:b]`` (step 1, a, b >= 0)."""
    if not isinstance(index, tuple) or not index:
        return None
    *lead, last = index
    if not isinstance(last, slice) or last.step not in (None, 1) or last.stop is None:
        return None
    start = last.start or 0
    if start < 0 or last.stop < 0:
        return None
    if lead == [Ellipsis]:
        return -1, start, last.stop
    if all(isinstance(s, slice) and s == slice(None) for s in lead):
        return len(lead), start, last.stop
    return None


def _disjoint_slices(
    tensor: torch.Tensor, dim: int, bounds: tuple[tuple[int, int], ...]
) -> tuple[torch.Tensor, ...]:
    """``tensor`` cut at sorted, disjoint ``[start, stop)`` along ``dim``, as one split."""
    n = tensor.shape[dim]
    sizes: list[int] = []
    keep: list[int] = []
    position = 0
    for start, stop in bounds:
        start, stop = min(start, n), min(stop, n)  # as slicing clamps
        if start > position:
            sizes.append(start - position)
        keep.append(len(sizes))
        sizes.append(stop - start)
        position = stop
    if position < n:
        sizes.append(n - position)
    pieces = torch.split_with_sizes(tensor, sizes, dim)
    return tuple(pieces[k] for k in keep)


def _plain(atoms: Atoms) -> Atoms:
    """A copy without calculator or starting moments (they would become site properties)."""
    copy = atoms.copy()
    if copy.has("initial_magmoms"):
        copy.set_initial_magnetic_moments(None)
    return copy
