"""Ensemble of CrystalGNNs or CompositionNets: fit, predict with uncertainty, save and load."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

import torch
from torch import nn
from torch_geometric.data import Data

from models.checkpoints import (
    FORMAT_VERSION,
    CheckpointMismatchError,
    plain,
    read_checkpoint,
    settings_mismatch,
    write_checkpoint,
)
from models.device import resolve_device
from models.graph_cache import GraphCache
from models.kinds import CRYSTAL, kind_named, kind_of
from models.metrics import calibration_metrics, fit_variance_scale
from models.records import EpochLog, Prediction, TrainReport
from models.settings import CompositionSettings, GNNSettings, TrainSettings
from models.splits import grouped_split
from models.training import predict_standardised, train_member

log = logging.getLogger(__name__)

# A near-constant target set would otherwise blow the standardised targets up.
_STD_FLOOR = 1e-3


ModelSettings = GNNSettings | CompositionSettings


def _in_ev(on_epoch: Callable[[EpochLog], None] | None, member: int, std: float):
    """Adapt a caller's per-epoch callback to one member, with the MAE back in eV/atom."""
    if on_epoch is None:
        return None

    def report(epoch: int, train_loss: float, val_mae: float | None) -> None:
        on_epoch(EpochLog(member, epoch, train_loss, None if val_mae is None else val_mae * std))

    return report


def _aggregate(per_scale: torch.Tensor, how: str) -> torch.Tensor:
    if how == "mean":
        return per_scale.mean(dim=0)
    if how == "min":
        return per_scale.min(dim=0).values
    raise ValueError(f"aggregate must be 'mean' or 'min', got {how!r}")


class Ensemble:
    """Members are CrystalGNNs taking pymatgen Structures when built with GNNSettings, and
    CompositionNets taking Compositions or formula strings when built with CompositionSettings."""

    def __init__(
        self, gnn: ModelSettings, n_members: int = 3, seed: int = 0, device: str = "auto"
    ) -> None:
        if n_members < 1:
            raise ValueError(f"n_members must be >= 1, got {n_members}")
        self.kind = kind_of(gnn)
        self.settings = gnn
        self.n_members = n_members
        self.seed = seed
        self.device = resolve_device(device)
        self.members = [self._fresh_member(k) for k in range(n_members)]
        self.target_mean = 0.0
        self.target_std = 1.0
        self.variance_scale = 1.0
        self._trained = False
        self._extra: dict[str, Any] = {}

    def member_seed(self, k: int) -> int:
        return self.seed * 1000 + k

    def _fresh_member(self, k: int) -> nn.Module:
        # Initialise on the CPU generator only, inside a forked RNG state, so the same seed gives
        # the same weights on any device and callers' global RNG streams are left alone.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(self.member_seed(k))
            model = self.kind.build(self.settings)
        return model.to(self.device)

    @property
    def is_trained(self) -> bool:
        return self._trained

    @property
    def extra(self) -> dict[str, Any]:
        return copy.deepcopy(self._extra)

    def _graphs(self, structures: Sequence[Any], cache: GraphCache | None = None) -> list[Data]:
        graphs = self.kind.to_graphs(structures, self.settings, cache)
        for i, g in enumerate(graphs):
            # Checked here, on CPU tensors, to avoid a device sync inside every forward pass.
            if g.num_nodes == 0 or int(g.z.max()) > self.settings.max_z:
                raise ValueError(
                    f"input {i} ({self.kind.describe(structures[i])}) is empty or has an element "
                    f"beyond max_z={self.settings.max_z}"
                )
        return graphs

    def fit(
        self,
        structures: Sequence[Any],
        targets: Sequence[float],
        train: TrainSettings,
        init_from: Ensemble | None = None,
        on_epoch: Callable[[EpochLog], None] | None = None,
        graph_cache: GraphCache | None = None,
        weights: Sequence[float] | None = None,
    ) -> TrainReport:
        """`on_epoch` gets an EpochLog after every epoch of every member. With a validation
        split, the members' spread is scaled to match the validation errors (NLL-optimal).
        `graph_cache` (crystal models) reuses and keeps the structures' graphs. `weights`
        (finite, > 0, one per structure) weight each sample's loss and its share of the
        validation MAE that early stopping watches; None weighs all alike."""
        if len(structures) == 0:
            raise ValueError("cannot fit an ensemble on an empty dataset")
        if len(structures) != len(targets):
            raise ValueError(
                f"got {len(structures)} structures but {len(targets)} targets; lengths must match"
            )
        if init_from is not None:
            self._check_compatible(init_from)
        started = time.perf_counter()

        y = torch.tensor([float(t) for t in targets], dtype=torch.float64)
        if not bool(torch.isfinite(y).all()):
            raise ValueError("targets contain NaN or infinite values")
        w = _checked_weights(weights, len(structures))
        graphs = self._graphs(structures, graph_cache)
        formulas = [self.kind.group_key(s) for s in structures]
        train_idx, val_idx = grouped_split(formulas, train.val_fraction, self.seed)
        train_graphs = [graphs[i] for i in train_idx]
        val_graphs = [graphs[i] for i in val_idx]

        if init_from is not None:
            # Keep the parent's scale so the copied weights still mean what they meant.
            mean, std = init_from.target_mean, init_from.target_std
        else:
            y_train = y[train_idx]
            mean = float(y_train.mean())
            std = max(float(y_train.std(correction=0)), _STD_FLOOR)
        # A fit that dies half-way must not leave a mix of old and new members usable.
        self._trained = False
        self.target_mean, self.target_std = mean, std
        self.variance_scale = 1.0
        y_std = (y - mean) / std

        epochs_run = []
        for k in range(self.n_members):
            model = self._fresh_member(k)
            if init_from is not None:
                model.load_state_dict(init_from.members[k].state_dict())
            epochs_run.append(
                train_member(
                    model,
                    train_graphs,
                    y_std[train_idx],
                    val_graphs,
                    y_std[val_idx],
                    train,
                    self.member_seed(k),
                    self.device,
                    _in_ev(on_epoch, k, std),
                    self.kind.prepare,
                    None if w is None else w[train_idx],
                    None if w is None else w[val_idx],
                )
            )
            self.members[k] = model
        self._trained = True
        self._extra = {}

        mean_pred, spread = self._predict_graphs(graphs, batch_size=256)
        abs_err = (mean_pred - y).abs()
        calibration: dict[str, float] = {}
        if val_idx and bool((spread[val_idx] > 0).any()):
            val_err, val_spread = (mean_pred - y)[val_idx].numpy(), spread[val_idx].numpy()
            self.variance_scale = fit_variance_scale(val_err, val_spread)
            calibration = calibration_metrics(val_err, self.variance_scale * val_spread)
        report = TrainReport(
            n_train=len(train_idx),
            n_val=len(val_idx),
            epochs_run=epochs_run,
            train_mae=float(abs_err[train_idx].mean()),
            val_mae=float(abs_err[val_idx].mean()) if val_idx else None,
            wall_s=time.perf_counter() - started,
            variance_scale=self.variance_scale,
            calibration=calibration,
        )
        log.info("ensemble fit: %s", report.summary())
        return report

    def _check_compatible(self, other: Ensemble) -> None:
        if not other.is_trained:
            raise RuntimeError("init_from ensemble is not trained")
        problems = settings_mismatch(other.settings, self.settings)
        if other.n_members != self.n_members:
            problems.append(
                f"checkpoint has n_members={other.n_members}, "
                f"config asks n_members={self.n_members}"
            )
        if problems:
            raise CheckpointMismatchError("; ".join(problems))

    def _per_member(self, graphs: Sequence[Data], batch_size: int) -> torch.Tensor:
        """[n_members, n] predictions in eV/atom, float64 on the CPU."""
        per_member = predict_standardised(
            self.members, graphs, batch_size, self.device, self.kind.prepare
        )
        return per_member * self.target_std + self.target_mean

    def _predict_graphs(self, graphs: Sequence[Data], batch_size: int) -> tuple[torch.Tensor, ...]:
        """(mean, unscaled std) over members in eV/atom, float64 CPU tensors."""
        per_member = self._per_member(graphs, batch_size)
        return per_member.mean(dim=0), per_member.std(dim=0, correction=0)

    def predict(
        self,
        structures: Sequence[Any],
        batch_size: int = 64,
        volume_scales: Sequence[float] = (),
        aggregate: str = "mean",
        graph_cache: GraphCache | None = None,
    ) -> list[Prediction]:
        """Mean and calibrated spread of the members' formation energies per atom.

        `volume_scales` (crystal models only) is test-time augmentation: every structure is
        also predicted with its cell volume times each factor (e.g. 0.8 ... 1.2), and each
        member's predictions over the scales are combined by `aggregate` ('mean', or 'min': the
        volume that suits the structure best, as a relaxation would find) before the ensemble
        statistics are taken."""
        if not self._trained:
            raise RuntimeError("ensemble is not trained")
        if len(structures) == 0:
            return []
        if not volume_scales:
            per_member = self._per_member(self._graphs(structures, graph_cache), batch_size)
        else:
            if self.kind is not CRYSTAL:
                raise ValueError("volume augmentation needs a crystal model; this is composition")
            if any(not 0.0 < f for f in volume_scales):
                raise ValueError(f"volume scales must be > 0, got {list(volume_scales)}")
            per_scale = torch.stack(
                [
                    self._per_member(self._graphs(_scaled(structures, f), graph_cache), batch_size)
                    for f in volume_scales
                ]
            )
            per_member = _aggregate(per_scale, aggregate)
        mean = per_member.mean(dim=0)
        std = per_member.std(dim=0, correction=0) * self.variance_scale
        return [Prediction(mean=float(m), std=float(s)) for m, s in zip(mean, std, strict=True)]

    def save(self, path: str | Path, extra: dict | None = None) -> None:
        if not self._trained:
            raise RuntimeError("ensemble is not trained")
        extra_plain = plain(extra or {})
        write_checkpoint(
            path,
            {
                "format_version": FORMAT_VERSION,
                "kind": self.kind.name,
                # Crystal checkpoints keep the historical key so older readers still load them.
                _settings_key(self.kind.name): self.settings.to_dict(),
                "n_members": self.n_members,
                "seed": self.seed,
                "target_mean": self.target_mean,
                "target_std": self.target_std,
                "variance_scale": self.variance_scale,
                "members": [
                    {k: v.detach().cpu() for k, v in m.state_dict().items()} for m in self.members
                ],
                "extra": extra_plain,
            },
        )
        self._extra = extra_plain

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str = "auto",
        expect: ModelSettings | None = None,
        kind: str | None = None,
    ) -> Self:
        """`expect` checks the whole configuration, `kind` ("crystal" or "composition") only
        the kind of model; either refuses a checkpoint that does not match."""
        payload = read_checkpoint(path)
        # Checkpoints written before composition models existed carry no kind.
        try:
            saved_kind = kind_named(payload.get("kind", CRYSTAL.name))
        except ValueError as exc:
            raise CheckpointMismatchError(f"{path}: {exc}") from None
        wanted_kind = kind_of(expect) if expect is not None else None
        if kind is not None:
            wanted_kind = kind_named(kind)
        if wanted_kind is not None and wanted_kind is not saved_kind:
            raise CheckpointMismatchError(
                f"{path} holds a {saved_kind.name} model, "
                f"but a {wanted_kind.name} model was asked for"
            )
        saved = saved_kind.settings_cls.from_dict(payload[_settings_key(saved_kind.name)])
        if expect is not None:
            problems = settings_mismatch(saved, expect)
            if problems:
                raise CheckpointMismatchError(f"{path}: " + "; ".join(problems))
        ensemble = cls(saved, n_members=payload["n_members"], seed=payload["seed"], device=device)
        for model, state in zip(ensemble.members, payload["members"], strict=True):
            model.load_state_dict(state)
        ensemble.target_mean = float(payload["target_mean"])
        ensemble.target_std = float(payload["target_std"])
        # Checkpoints from before calibration carry no scale: their spread is used as it is.
        ensemble.variance_scale = float(payload.get("variance_scale", 1.0))
        ensemble._extra = payload.get("extra") or {}
        ensemble._trained = True
        return ensemble


def _checked_weights(weights: Sequence[float] | None, n: int) -> torch.Tensor | None:
    if weights is None:
        return None
    if len(weights) != n:
        raise ValueError(f"got {n} structures but {len(weights)} weights; lengths must match")
    w = torch.tensor([float(v) for v in weights], dtype=torch.float64)
    if not bool(torch.isfinite(w).all()) or bool((w <= 0).any()):
        raise ValueError("weights must be finite and > 0")
    return w


def _scaled(structures: Sequence[Any], factor: float) -> list[Any]:
    out = []
    for structure in structures:
        copy_ = structure.copy()
        copy_.scale_lattice(structure.volume * factor)
        out.append(copy_)
    return out


def _settings_key(kind_name: str) -> str:
    return "gnn" if kind_name == CRYSTAL.name else "settings"
