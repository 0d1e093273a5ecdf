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
from models.kinds import CRYSTAL, kind_named, kind_of
from models.records import Prediction, TrainReport
from models.settings import CompositionSettings, GNNSettings, TrainSettings
from models.splits import grouped_split
from models.training import predict_standardised, train_member

log = logging.getLogger(__name__)

# A near-constant target set would otherwise blow the standardised targets up.
_STD_FLOOR = 1e-3


ModelSettings = GNNSettings | CompositionSettings


def _in_ev(on_epoch, member: int, std: float):
    """Adapt a caller's per-epoch callback to one member, with the MAE back in eV/atom."""
    if on_epoch is None:
        return None
    return lambda epoch, mae: on_epoch(member, epoch, None if mae is None else mae * std)


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

    def _graphs(self, structures: Sequence[Any]) -> list[Data]:
        graphs = self.kind.to_graphs(structures, self.settings)
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
        on_epoch: Callable[[int, int, float | None], None] | None = None,
    ) -> TrainReport:
        """`on_epoch(member, epoch, val_mae)` is called after every epoch of every member, with
        the validation MAE in eV/atom (None without a validation split)."""
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
        graphs = self._graphs(structures)
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
                )
            )
            self.members[k] = model
        self._trained = True
        self._extra = {}

        mean_pred = self._predict_graphs(graphs, batch_size=256)[0]
        abs_err = (mean_pred - y).abs()
        report = TrainReport(
            n_train=len(train_idx),
            n_val=len(val_idx),
            epochs_run=epochs_run,
            train_mae=float(abs_err[train_idx].mean()),
            val_mae=float(abs_err[val_idx].mean()) if val_idx else None,
            wall_s=time.perf_counter() - started,
        )
        log.info("ensemble fit: %s", report)
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

    def _predict_graphs(self, graphs: Sequence[Data], batch_size: int) -> tuple[torch.Tensor, ...]:
        """(mean, std) over members in eV/atom, float64 CPU tensors."""
        per_member = torch.stack(
            [predict_standardised(m, graphs, batch_size, self.device) for m in self.members]
        )
        per_member = per_member * self.target_std + self.target_mean
        return per_member.mean(dim=0), per_member.std(dim=0, correction=0)

    def predict(self, structures: Sequence[Any], batch_size: int = 64) -> list[Prediction]:
        if not self._trained:
            raise RuntimeError("ensemble is not trained")
        if len(structures) == 0:
            return []
        mean, std = self._predict_graphs(self._graphs(structures), batch_size)
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
        ensemble._extra = payload.get("extra") or {}
        ensemble._trained = True
        return ensemble


def _settings_key(kind_name: str) -> str:
    return "gnn" if kind_name == CRYSTAL.name else "settings"
