"""Turn a user-facing device string into a torch.device."""

from __future__ import annotations

import torch


def resolve_device(spec: str) -> torch.device:
    """Map "auto", "cpu", "cuda" or "cuda:N" to a device, failing early if CUDA is asked for
    but absent (better than a cryptic error deep inside training)."""
    spec = spec.strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec!r} requested but CUDA is not available")
        device = torch.device(spec)
        n_gpus = torch.cuda.device_count()
        if device.index is not None and device.index >= n_gpus:
            raise ValueError(f"device {spec!r} requested but only {n_gpus} CUDA device(s) exist")
        return device
    raise ValueError(f"unknown device {spec!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
