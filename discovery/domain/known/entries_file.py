"""Known phases from a local file of pymatgen entries: a JSON list of `ComputedStructureEntry`
(or `ComputedEntry`) dicts as `monty.serialization.dumpfn` writes it and Materials Project
downloads hold, or an Alexandria dump (``{"entries": [...]}``); plain, gzip, bzip2 or xz.

Such files hold 10^5–10^6 entries, nearly all outside a campaign's elements. The file is
therefore streamed with ijson one entry at a time, and an entry's elements are read from its
dict (``composition``, else the structure's species) before any pymatgen object is built:
memory grows with the entries kept, not with the file.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from pymatgen.entries.computed_entries import ComputedStructureEntry

from discovery.domain.known.phase import MP2020, KnownPhase, KnownSourceError

log = logging.getLogger(__name__)

SOURCE = "entries"
_ELEMENT = re.compile(r"[A-Z][a-z]?")
# Energy schemes named by the compatibility class an entry's adjustments come from.
_SCHEMES = {
    "MaterialsProject2020Compatibility": MP2020,
    "MaterialsProjectCompatibility": "mp_legacy",
    "MaterialsProjectDFTMixingScheme": "mp_r2scan_mixing",
}
_MAGIC = ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open))


@dataclass
class EntriesLoad:
    """What one entries file gave: the phases kept and, by reason, the entries skipped."""

    phases: list[KnownPhase] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    read: int = 0  # entries seen in the file


def _open(path: Path) -> IO[bytes]:
    """The file's decompressed bytes, the compression found from its first bytes."""
    with path.open("rb") as f:
        head = f.read(6)
    for magic, opener in _MAGIC:
        if head.startswith(magic):
            return cast(IO[bytes], opener(path, "rb"))  # type: ignore[operator]
    return path.open("rb")


def _first_char(path: Path) -> str:
    with _open(path) as f:
        while chunk := f.read(256):
            text = chunk.lstrip()
            if text:
                return chr(text[0])
    raise KnownSourceError(f"{path}: empty file, no entries")


def _entry_elements(entry: dict[str, Any]) -> set[str] | None:
    """The elements of an entry dict without building pymatgen objects; None when the dict
    names none (then the entry is not an entry)."""
    composition = entry.get("composition")
    if isinstance(composition, dict) and composition:
        found = set()
        for key, amount in composition.items():
            match = _ELEMENT.match(str(key))
            if match is None:
                return None
            if amount:
                found.add(match.group())
        return found
    structure = entry.get("structure")
    if isinstance(structure, dict):
        found = set()
        for site in structure.get("sites", ()):
            for species in site.get("species", ()):
                match = _ELEMENT.match(str(species.get("element", "")))
                if match is None:
                    return None
                found.add(match.group())
        return found or None
    return None


def entry_scheme(entry: dict[str, Any], default: str) -> str:
    """The energy scheme an entry dict shows: the compatibility class named by its energy
    adjustments (MP2020 → ``"mp2020"``), else `default` (the caller's word for the file)."""
    for adjustment in entry.get("energy_adjustments") or ():
        cls = adjustment.get("cls") if isinstance(adjustment, dict) else None
        name = cls.get("@class") if isinstance(cls, dict) else None
        if name:
            return _SCHEMES.get(str(name), str(name))
    return default


def _entry_id(entry: dict[str, Any], path: Path, index: int) -> str:
    data = entry.get("data")
    data = data if isinstance(data, dict) else {}
    for value in (entry.get("entry_id"), data.get("material_id"), data.get("mat_id")):
        if value:
            return str(value)
    return f"{path.name}#{index}"


def _items(path: Path) -> Iterator[dict[str, Any]]:
    """The entry dicts of the file, one at a time, for either top-level form."""
    import ijson

    first = _first_char(path)
    if first not in "[{":
        raise KnownSourceError(f"{path}: not JSON (starts with {first!r})")
    prefix = "item" if first == "[" else "entries.item"
    n = 0
    with _open(path) as f:
        for item in ijson.items(f, prefix, use_float=True):
            n += 1
            yield item
    if n == 0 and first == "{":
        with _open(path) as f:
            keys = {v for p, e, v in ijson.parse(f) if p == "" and e == "map_key"}
        if "entries" in keys:
            return
        # {name: entry}, as matbench-discovery's elemental references
        with _open(path) as f:
            for key, value in ijson.kvitems(f, "", use_float=True):
                if not (isinstance(value, dict) and "energy" in value):
                    raise KnownSourceError(
                        f"{path}: a JSON object without an 'entries' list, and its key "
                        f"{key!r} holds no entry; expected a list of entries, "
                        "{'entries': [...]} or {name: entry}"
                    )
                yield value


def load_entries(
    path: str | Path, elements: Iterable[str] | None, scheme: str = MP2020
) -> EntriesLoad:
    """The known phases of an entries file whose elements all lie within `elements` (None:
    every entry), with the count of entries skipped by reason.

    Energies are pymatgen's corrected ``energy_per_atom`` (``energy`` plus its corrections);
    the scheme is the one the entry's adjustments name, else `scheme`. Entries without a
    structure are skipped: novelty needs structures.

    Raises:
        KnownSourceError: the file is missing, unreadable, not JSON or holds a broken entry;
            the message names the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise KnownSourceError(f"{path}: no such entries file")
    allowed = None if elements is None else frozenset(elements)
    out = EntriesLoad()
    index = -1
    try:
        for index, item in enumerate(_items(path)):
            out.read += 1
            if not isinstance(item, dict):
                raise KnownSourceError(f"{path}: entry {index} is not a JSON object")
            present = _entry_elements(item)
            if present is None:
                raise KnownSourceError(
                    f"{path}: entry {index} has neither a composition nor a structure"
                )
            if allowed is not None and not present <= allowed:
                out.skipped["other elements"] += 1
                continue
            if not isinstance(item.get("structure"), dict):
                out.skipped["no structure"] += 1
                continue
            entry_id = _entry_id(item, path, index)
            try:
                entry = ComputedStructureEntry.from_dict(item)
            except Exception as err:
                raise KnownSourceError(
                    f"{path}: entry {index} ({entry_id}) is not a pymatgen entry: {err}"
                ) from None
            if not entry.structure.is_ordered:
                out.skipped["partial occupancy"] += 1
                continue
            out.phases.append(
                KnownPhase(
                    id=entry_id,
                    source=SOURCE,
                    structure=entry.structure,
                    energy_per_atom=float(entry.energy_per_atom),
                    energy_scheme=entry_scheme(item, scheme),
                    provenance={"file": str(path), "index": index},
                )
            )
    except KnownSourceError:
        raise
    except Exception as err:  # ijson, gzip, bz2, lzma and OS errors
        where = f"after entry {index}" if index >= 0 else "before the first entry"
        raise KnownSourceError(f"{path}: corrupt entries file ({where}): {err}") from None
    return out


def entries_phases(
    path: str | Path, elements: Iterable[str] | None, scheme: str = MP2020
) -> list[KnownPhase]:
    """The known phases of an entries file within `elements`; the skipped entries are
    counted in the log. See `load_entries`."""
    loaded = load_entries(path, elements, scheme)
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(loaded.skipped.items()))
    log.info(
        "%s: %d of %d entries kept%s",
        Path(path).name,
        len(loaded.phases),
        loaded.read,
        f" (skipped: {skipped})" if skipped else "",
    )
    return loaded.phases
