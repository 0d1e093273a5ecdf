"""Checkpoint file format: atomic writes, safe loads and settings comparison."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT_VERSION = 1


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model configuration that asked for it."""


def settings_mismatch(saved: Any, wanted: Any) -> list[str]:
    """How a checkpoint's model settings differ from the wanted ones, one line per field
    (empty when they agree)."""
    if type(saved) is not type(wanted):
        # Field-by-field differences between two unrelated models would only bury the cause.
        return [
            f"checkpoint holds a {type(saved).__name__} model, "
            f"config asks for a {type(wanted).__name__} model"
        ]
    saved_d, wanted_d = saved.to_dict(), wanted.to_dict()
    return [
        f"checkpoint has {k}={saved_d[k]!r}, config asks {k}={wanted_d[k]!r}"
        for k in saved_d
        if saved_d[k] != wanted_d[k]
    ]


def plain(obj: Any) -> Any:
    """Reduce caller metadata to builtins so checkpoints stay loadable with weights_only=True."""
    # numpy scalars first: np.float64 subclasses float but does not survive weights_only loading.
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    raise TypeError(f"checkpoint metadata must be plain data, got {type(obj).__name__}")


def write_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write via a temporary file in the same directory so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The payload of an ensemble checkpoint, loaded with weights_only; CheckpointMismatchError
    for another file or an unsupported format version."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointMismatchError(f"{path} is not an ensemble checkpoint")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointMismatchError(
            f"{path} has checkpoint format {payload['format_version']}, "
            f"this code reads format {FORMAT_VERSION}"
        )
    return payload
