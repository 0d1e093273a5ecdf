"""Training loop for a single ensemble member, with early stopping."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from models.graphs import collate
from models.settings import TrainSettings

log = logging.getLogger(__name__)

# Huber on standardised targets: quadratic near zero for fast convergence, linear on outliers.
_HUBER_DELTA = 1.0
# Cosine decay floor, relative to the initial learning rate.
_LR_FLOOR = 0.05


Prepare = Callable[[Batch], Any]


def _unchanged(batch: Batch) -> Batch:
    return batch


def _batch(graphs: Sequence[Data], device: torch.device, prepare: Prepare) -> Any:
    return prepare(collate(graphs, torch.device("cpu"))).to(device)


def predict_standardised(
    models: Sequence[nn.Module],
    graphs: Sequence[Data],
    batch_size: int,
    device: torch.device,
    prepare: Prepare = _unchanged,
) -> Tensor:
    """Outputs of every model for `graphs` in standardised units, [n_models, n_graphs], float64
    on the CPU. Each batch is collated and prepared once and then run through all models."""
    for model in models:
        model.eval()
    outputs: list[list[Tensor]] = [[] for _ in models]
    with torch.inference_mode():
        for start in range(0, len(graphs), batch_size):
            batch = _batch(graphs[start : start + batch_size], device, prepare)
            for out, model in zip(outputs, models, strict=True):
                out.append(model(batch).to("cpu", torch.float64))
    if not graphs:
        return torch.zeros(len(models), 0, dtype=torch.float64)
    return torch.stack([torch.cat(out) for out in outputs])


def _weighted_mae(pred: Tensor, target: Tensor, weights: Tensor | None) -> float:
    errors = (pred - target).abs()
    if weights is None:
        return float(errors.mean())
    w = weights.to(errors.dtype)
    return float((w * errors).sum() / w.sum())


def train_member(
    model: nn.Module,
    train_graphs: Sequence[Data],
    train_y: Tensor,
    val_graphs: Sequence[Data],
    val_y: Tensor,
    settings: TrainSettings,
    seed: int,
    device: torch.device,
    on_epoch: Callable[[int, float, float | None], None] | None = None,
    prepare: Prepare = _unchanged,
    train_w: Tensor | None = None,
    val_w: Tensor | None = None,
) -> int:
    """Fit `model` in place to standardised targets; returns the number of epochs run.

    With a validation set, the weights of the best validation epoch are restored. `on_epoch`
    gets (epoch, mean training loss, standardised validation MAE or None) after every epoch; a
    hyper-parameter search reports and prunes from there, inside the loop (an exception it
    raises propagates). `train_w` and `val_w` weight each sample in the loss and in the
    validation MAE (sum(w*l)/sum(w)), so that less trusted labels count less; None weighs
    every sample alike."""
    dtype = next(model.parameters()).dtype
    targets = train_y.to(device, dtype)
    weights = train_w.to(device, dtype) if train_w is not None else None
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimiser, T_max=settings.epochs, eta_min=settings.lr * _LR_FLOOR
    )
    # A private generator keeps shuffling reproducible without touching global RNG state.
    shuffle = torch.Generator().manual_seed(seed)

    best_val, best_state, since_best = float("inf"), None, 0
    epoch = 0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = torch.randperm(len(train_graphs), generator=shuffle)
        loss_sum = torch.zeros((), device=device, dtype=dtype)
        weight_sum = torch.zeros((), device=device, dtype=dtype)
        for start in range(0, len(order), settings.batch_size):
            idx = order[start : start + settings.batch_size]
            batch = _batch([train_graphs[i] for i in idx.tolist()], device, prepare)
            on_device = idx.to(device)
            if weights is None:
                loss = nn.functional.huber_loss(
                    model(batch), targets[on_device], delta=_HUBER_DELTA
                )
                batch_weight = torch.tensor(float(len(idx)), device=device, dtype=dtype)
            else:
                w = weights[on_device]
                per_sample = nn.functional.huber_loss(
                    model(batch), targets[on_device], delta=_HUBER_DELTA, reduction="none"
                )
                batch_weight = w.sum()
                loss = (w * per_sample).sum() / batch_weight
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            loss_sum += loss.detach() * batch_weight  # no device sync per batch
            weight_sum += batch_weight
        scheduler.step()
        train_loss = float(loss_sum) / max(float(weight_sum), 1e-12) if len(order) else 0.0

        if not val_graphs:
            if on_epoch is not None:
                on_epoch(epoch, train_loss, None)
            continue
        val_pred = predict_standardised([model], val_graphs, 256, device, prepare)[0]
        val_mae = _weighted_mae(val_pred, val_y, val_w)
        if on_epoch is not None:
            on_epoch(epoch, train_loss, val_mae)
        if val_mae < best_val:
            best_val, since_best = val_mae, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since_best += 1
            if since_best >= settings.patience:
                log.debug(
                    "early stop at epoch %d (best standardised val MAE %.4f)", epoch, best_val
                )
                break

    if best_state is not None:
        model.load_state_dict(best_state)
    return epoch
