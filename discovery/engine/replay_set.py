"""The replay set: the teacher-labelled entries a pretrained checkpoint learnt from, written
beside it by `discovery pretrain` and replayed (weighted down) when a campaign fine-tunes from
it. Shared by pretraining (writes), the initial model (copies) and the learn stage (reads).

One gzipped JSON document without indentation: a format number, the units and the entries.
Every entry carries a teacher label; a model's prediction is never a label here, and reading
refuses a file whose entries claim any other kind."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPLAY_SUFFIX = ".replay.json.gz"
FORMAT = 1
# The label kinds a teacher gives (see pretraining.label_targets); nothing else is replayed.
TEACHER_KINDS = ("relaxed", "single_point_corrected", "reference")


@dataclass(frozen=True)
class ReplayEntry:
    """One teacher-labelled training entry: the structure as pymatgen `as_dict()`, its target
    formation energy (eV/atom) and, for relaxed ones, the relaxed geometry with that label."""

    uid: str
    chemsys: str
    kind: str
    target: float
    structure: dict[str, Any]
    relaxed: dict[str, Any] | None = None


def replay_path(checkpoint: Path) -> Path:
    """Where the replay set of `checkpoint` lies: beside it, `<stem>.replay.json.gz`."""
    return checkpoint.with_name(checkpoint.stem + REPLAY_SUFFIX)


def _checked(entry: ReplayEntry) -> ReplayEntry:
    if entry.kind not in TEACHER_KINDS:
        raise ValueError(
            f"replay entry {entry.uid} has label kind {entry.kind!r}; only teacher labels "
            f"({', '.join(TEACHER_KINDS)}) are replayed"
        )
    return entry


def sha256(path: Path) -> str:
    """The hex sha256 of the file at `path`, as the data card records it."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_replay(path: Path, entries: list[ReplayEntry]) -> str:
    """Write `entries` at `path` atomically; its sha256. The gzip header carries no time, so
    the same entries give the same bytes."""
    document = {
        "format": FORMAT,
        "units": "eV/atom",
        "entries": [asdict(_checked(e)) for e in entries],
    }
    payload = json.dumps(document, separators=(",", ":")).encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha256(path)


def read_replay(path: Path) -> list[ReplayEntry]:
    """The entries of the replay set at `path`."""
    with gzip.open(path, "rt") as fh:
        document = json.load(fh)
    if document.get("format") != FORMAT:
        raise ValueError(f"{path}: replay format {document.get('format')!r}, expected {FORMAT}")
    return [_checked(ReplayEntry(**e)) for e in document["entries"]]


def copy_replay(source: Path, target: Path) -> None:
    """Copy a replay set atomically (a kill mid-copy leaves no partial file at `target`)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def with_replay(
    structures: list, targets: list[float], synthetic: list[ReplayEntry], weight: float
) -> tuple[list, list[float], list[float] | None]:
    """The real set plus the synthetic entries (both geometries of a relaxed one), and the
    weights: 1 for real, `weight` (< 1) for synthetic; None when nothing is replayed, so an
    unguided round trains exactly as before."""
    if not synthetic:
        return structures, targets, None
    from pymatgen.core import Structure

    weights = [1.0] * len(structures)
    structures, targets = list(structures), list(targets)
    for entry in synthetic:
        for geometry in (entry.structure, entry.relaxed):
            if geometry is not None:
                structures.append(Structure.from_dict(geometry))
                targets.append(entry.target)
                weights.append(weight)
    return structures, targets, weights
