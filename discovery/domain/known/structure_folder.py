"""Known phases from a folder (or a single file) of structures without energies: CIF,
POSCAR/CONTCAR, pymatgen JSON or extxyz, optionally gzip/bzip2/xz compressed (not extxyz).

They count for novelty (a candidate that repeats one is known) but not for the hull. Files
are read with the same reader as the user structures of generation
(`discovery.domain.generation.user_structures`), so both accept the same files.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from discovery.domain.generation.user_structures import (
    StructureFileError,
    read_structure_file,
    structure_files,
)
from discovery.domain.known.phase import KnownPhase, KnownSourceError

log = logging.getLogger(__name__)

SOURCE = "structures"


def folder_phases(
    path: str | Path, elements: Iterable[str] | None, skipped: Counter[str] | None = None
) -> list[KnownPhase]:
    """The structures of a folder's files (sorted, not recursive) or of one file, as known
    phases without energies; only those whose elements all lie within `elements` (None:
    every one). Each phase's id is its file name. Structures with other elements are counted
    in `skipped` (when given) and in the log.

    Raises:
        KnownSourceError: the path does not exist, a folder holds no structure files, a file
            cannot be read, or a kept structure is partially occupied; the message names the
            file.
    """
    allowed = None if elements is None else frozenset(elements)
    counts: Counter[str] = Counter() if skipped is None else skipped
    try:
        files = structure_files(path)
    except StructureFileError as err:
        raise KnownSourceError(str(err)) from None
    phases: list[KnownPhase] = []
    for file in files:
        try:
            structure = read_structure_file(file)
        except StructureFileError as err:
            raise KnownSourceError(f"known structures: {err}") from None
        present = {el.symbol for el in structure.composition.elements}
        if allowed is not None and not present <= allowed:
            counts["other elements"] += 1
            continue
        if not structure.is_ordered:
            raise KnownSourceError(
                f"{file}: partial occupancy; a known structure must be ordered (order it, "
                "e.g. with pymatgen's OrderDisorderedStructureTransformation, or remove it)"
            )
        phases.append(
            KnownPhase(
                id=file.name, source=SOURCE, structure=structure, provenance={"file": str(file)}
            )
        )
    log.info(
        "%s: %d of %d structures kept%s",
        path,
        len(phases),
        len(files),
        f" ({counts['other elements']} with other elements)" if counts["other elements"] else "",
    )
    return phases
