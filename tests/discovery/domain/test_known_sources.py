"""Known-material sources: entries files, structure folders, the Materials Project, merging."""

from __future__ import annotations

import bz2
import copy
import gzip
import json
import sys
import time
import tracemalloc
import types
from collections import Counter
from pathlib import Path

import pytest
from monty.serialization import loadfn
from pymatgen.core import Lattice, Structure

from discovery.domain.known.entries_file import entries_phases, load_entries
from discovery.domain.known.materials_project import (
    mp_api_key,
    mp_phases,
    require_mp_access,
)
from discovery.domain.known.merge import merge_phases
from discovery.domain.known.phase import MP2020, KnownPhase, KnownSourceError
from discovery.domain.known.structure_folder import folder_phases

MN_O_IDS = ["mp-19006", "mp-19395", "mp-18759", "mp-35", "mp-12957", "mp-1172875"]


@pytest.fixture(scope="module")
def mn_o_file(shared_data) -> Path:
    return shared_data / "mp" / "Mn-O_entries.json"


@pytest.fixture(scope="module")
def mn_o_dicts(mn_o_file) -> list[dict]:
    return json.loads(mn_o_file.read_text())


# --- entries files ----------------------------------------------------------------------


def test_entries_file_real_mp_entries(mn_o_file):
    phases = entries_phases(mn_o_file, ["Mn", "O"])
    assert [p.id for p in phases] == MN_O_IDS
    expected = [e.energy_per_atom for e in loadfn(mn_o_file)]  # pymatgen's corrected energy
    assert [p.energy_per_atom for p in phases] == pytest.approx(expected, abs=1e-9)
    assert {p.energy_scheme for p in phases} == {MP2020}
    assert {p.source for p in phases} == {"entries"}
    assert phases[0].reduced_formula == "MnO" and len(phases[-1].structure) == 80


def test_entries_file_keeps_only_the_campaign_elements(mn_o_file):
    loaded = load_entries(mn_o_file, ["Mn"])
    assert [p.id for p in loaded.phases] == ["mp-35"]
    assert loaded.skipped == {"other elements": 5} and loaded.read == 6
    assert [p.id for p in entries_phases(mn_o_file, ["Mn", "O", "Li"])] == MN_O_IDS


def test_entries_file_alexandria_form_compressed(tmp_path, mn_o_dicts):
    # Alexandria dumps: {"entries": [...]} of ComputedStructureEntry, bz2-compressed
    alexandria = tmp_path / "alexandria_000.json.bz2"
    entries = copy.deepcopy(mn_o_dicts)
    for i, e in enumerate(entries):
        del e["entry_id"]
        e["data"] = {"mat_id": f"agm{i:09d}"}
    with bz2.open(alexandria, "wt") as f:
        json.dump({"@module": "x", "entries": entries}, f)
    phases = entries_phases(alexandria, ["Mn", "O"])
    assert [p.id for p in phases] == [f"agm{i:09d}" for i in range(6)]
    # no id at all: file#index
    no_id = tmp_path / "no_id.json.gz"
    for e in entries:
        del e["data"]
    with gzip.open(no_id, "wt") as f:
        json.dump(entries, f)
    assert [p.id for p in entries_phases(no_id, None)][:2] == ["no_id.json.gz#0", "no_id.json.gz#1"]


def test_entries_file_scheme_from_the_entry_or_the_caller(tmp_path, mn_o_dicts):
    plain = copy.deepcopy(mn_o_dicts[:1])
    plain[0]["energy_adjustments"] = []
    plain[0]["correction"] = 0.0
    path = tmp_path / "plain.json"
    path.write_text(json.dumps(plain))
    (phase,) = entries_phases(path, None, scheme="alexandria_pbe")
    assert phase.energy_scheme == "alexandria_pbe"
    assert phase.energy_per_atom == pytest.approx(plain[0]["energy"] / 4)
    # MP2020 adjustments name their scheme whatever the caller says
    mp_path = tmp_path / "mp.json"
    mp_path.write_text(json.dumps(mn_o_dicts[:1]))
    assert entries_phases(mp_path, None, scheme="other")[0].energy_scheme == MP2020


def test_entries_file_without_structures_is_skipped_and_counted(shared_data):
    # matbench-discovery's elemental references: {element: ComputedEntry}, no structures
    path = shared_data / "mp" / "2023-02-07-mp-elemental-reference-entries.json.gz"
    loaded = load_entries(path, None)
    assert loaded.phases == [] and loaded.skipped == {"no structure": 89}
    assert load_entries(path, ["Mn", "O"]).skipped == {"no structure": 2, "other elements": 87}


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("truncated.json", "[{", "corrupt entries file"),
        ("text.json", "hello", "not JSON"),
        ("empty.json", "", "empty file"),
        ("numbers.json", "[1, 2]", "entry 0 is not a JSON object"),
        ("plot.json", '{"x": [1], "y": [2]}', "holds no entry"),
    ],
)
def test_entries_file_problems_name_the_file(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(KnownSourceError, match=problem) as err:
        entries_phases(path, None)
    assert str(path) in str(err.value)


def test_entries_file_missing_or_broken_gzip(tmp_path, mn_o_file):
    with pytest.raises(KnownSourceError, match="no such entries file") as err:
        entries_phases(tmp_path / "absent.json.gz", None)
    assert "absent.json.gz" in str(err.value)
    truncated = tmp_path / "truncated.json.gz"
    truncated.write_bytes(gzip.compress(mn_o_file.read_bytes())[:5000])
    with pytest.raises(KnownSourceError, match="truncated.json.gz: corrupt entries file"):
        entries_phases(truncated, None)
    broken = copy.deepcopy(json.loads(mn_o_file.read_text())[:1])
    broken[0]["structure"]["lattice"] = "nonsense"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken))
    with pytest.raises(KnownSourceError, match=r"bad.json: entry 0 \(mp-19006\) is not a pymatgen"):
        entries_phases(bad, None)


def test_entries_file_of_20000_entries_streams(tmp_path, mn_o_dicts):
    """A 20,000-entry gzip file, 60 of them Mn–O: filtering is exact, and memory stays far
    below the file's decoded size (entries outside the elements are never built)."""
    path = tmp_path / "big.json.gz"
    # The other entries: MnO's entry (4 sites) relabelled, cut to the fields pymatgen needs
    # so that the test stays quick; the 60 kept are the real entries in full.
    small = {
        k: v for k, v in mn_o_dicts[0].items() if k not in ("energy_adjustments", "parameters")
    }
    small["structure"] = copy.deepcopy(small["structure"])
    for site in small["structure"]["sites"]:
        site.pop("properties", None)
        site.pop("xyz", None)
    template = json.dumps(small)
    others = [("Fe", "S"), ("Li", "O"), ("Mn", "F"), ("Na", "Cl"), ("Ca", "Mn")]
    no_structure = copy.deepcopy(mn_o_dicts[1])
    del no_structure["structure"]
    no_structure["@class"] = "ComputedEntry"
    decoded = 0
    kept_ids = []
    with gzip.open(path, "wt", compresslevel=1) as f:
        f.write("[")
        for i in range(20_000):
            if i % 333 == 0 and len(kept_ids) < 60:  # the six real entries, altered ids
                entry = dict(mn_o_dicts[len(kept_ids) % 6], entry_id=f"copy-{i}")
                text = json.dumps(entry)
                kept_ids.append(f"copy-{i}")
            elif i % 1000 == 1:
                text = json.dumps(dict(no_structure, entry_id=f"bare-{i}"))
            else:
                a, b = others[i % len(others)]
                text = template.replace('"Mn"', f'"{a}"').replace('"O"', f'"{b}"')
                text = text.replace('"mp-19006"', f'"other-{i}"')
            f.write(("," if i else "") + text)
            decoded += len(text) + 1
        f.write("]")
    assert len(kept_ids) == 60

    start = time.perf_counter()
    tracemalloc.start()
    try:
        loaded = load_entries(path, ["Mn", "O"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - start

    assert [p.id for p in loaded.phases] == kept_ids
    assert loaded.read == 20_000
    assert loaded.skipped == {"other elements": 20_000 - 60 - 20, "no structure": 20}
    by_id = {e["entry_id"]: e for e in mn_o_dicts}
    for i, phase in enumerate(loaded.phases):
        original = by_id[MN_O_IDS[i % 6]]
        assert phase.energy_per_atom == pytest.approx(
            (original["energy"] + original["correction"]) / len(phase.structure)
        )
    assert decoded > 20e6
    assert peak < decoded / 5  # ~2 MB (mostly the 60 kept structures) of ~21 MB here
    assert elapsed < 40  # ~5 s here under tracemalloc (which triples it); a busy machine


# --- structure folders --------------------------------------------------------------------


def test_folder_of_real_structures_filters_by_elements(shared_data):
    folder = shared_data / "structures" / "pymatgen"
    skipped: Counter[str] = Counter()
    phases = folder_phases(folder, ["Li", "O", "Si"], skipped)
    assert [p.id for p in phases] == [
        "Li2O.json",
        "Li2O2.json",
        "Si.json",
        "SiO2.json",
        "Si_SiO2_Interface.json",
    ]
    assert skipped == {"other elements": 16}
    assert all(p.energy_per_atom is None and p.source == "structures" for p in phases)
    # a compressed CIF, and a single file
    (esseneite,) = folder_phases(shared_data / "structures" / "matbench-discovery", None)
    assert esseneite.reduced_formula == "CaFe(SiO3)2" and len(esseneite.structure) == 40
    (mno,) = folder_phases(shared_data / "structures" / "chgnet" / "MnO.cif", ["Mn", "O"])
    assert mno.id == "MnO.cif"


def test_folder_reads_poscar_and_extxyz(tmp_path, shared_data):
    from ase.io import write
    from pymatgen.io.ase import AseAtomsAdaptor

    li2o = Structure.from_file(shared_data / "structures" / "pymatgen" / "Li2O.json")
    li2o.to(filename=str(tmp_path / "POSCAR"), fmt="poscar")
    li2o.to(filename=str(tmp_path / "CONTCAR_Li2O"), fmt="poscar")
    write(tmp_path / "li2o.extxyz", AseAtomsAdaptor.get_atoms(li2o), format="extxyz")
    (tmp_path / "notes.txt").write_text("not a structure")
    phases = folder_phases(tmp_path, ["Li", "O"])
    assert sorted(p.id for p in phases) == ["CONTCAR_Li2O", "POSCAR", "li2o.extxyz"]
    assert all(p.reduced_formula == "Li2O" for p in phases)


def test_folder_problems_name_the_file(tmp_path, shared_data):
    with pytest.raises(KnownSourceError, match="no such file or folder"):
        folder_phases(tmp_path / "absent", None)
    with pytest.raises(KnownSourceError, match="no CIF, POSCAR"):
        folder_phases(tmp_path, None)
    (tmp_path / "broken.cif").write_text("data_x\n_cell_length_a nonsense\n")
    with pytest.raises(KnownSourceError, match="broken.cif: cannot parse"):
        folder_phases(tmp_path, None)
    # partial occupancy is refused when its elements are wanted, ignored when they are not
    lgps = shared_data / "structures" / "pymatgen" / "Li10GeP2S12.json"
    with pytest.raises(KnownSourceError, match="Li10GeP2S12.json: partial occupancy"):
        folder_phases(lgps, ["Li", "Ge", "P", "S"])
    assert folder_phases(lgps, ["Li", "O"]) == []


# --- Materials Project --------------------------------------------------------------------


def test_mp_api_key_from_config_or_environment(monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    assert mp_api_key(None) is None and mp_api_key("  ") is None
    assert mp_api_key("abc") == "abc"
    monkeypatch.setenv("MP_API_KEY", "from-env")
    assert mp_api_key(None) == "from-env"
    assert mp_api_key("abc") == "abc"  # the configuration's value first


def test_mp_without_key_says_what_to_do(monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(KnownSourceError) as err:
        mp_phases(["Li-Mn-O"], mp_api_key(None))
    message = str(err.value)
    assert "Materials Project: no API key" in message
    for hint in ("MP_API_KEY", "references.sources[...].api_key", "'entries'", "'bundled'"):
        assert hint in message


def test_mp_without_mp_api_says_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, "mp_api", None)  # import mp_api now fails
    monkeypatch.setitem(sys.modules, "mp_api.client", None)
    with pytest.raises(KnownSourceError) as err:
        require_mp_access("a-key")
    message = str(err.value)
    assert "mp-api package is not installed" in message and "pip install mp-api" in message
    assert "'entries'" in message and "'bundled'" in message


class _FakeRester:
    """Stands in for mp_api.client.MPRester: serves the real Mn–O entries of each system."""

    calls: list = []
    entries: list = []

    def __init__(self, api_key, **kwargs):
        self.db_version = "2025.09.25"
        type(self).calls.append(("init", api_key, kwargs))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def get_entries_in_chemsys(self, elements, additional_criteria=None):
        type(self).calls.append(("chemsys", list(elements), additional_criteria))
        if "Xx" in elements:
            raise RuntimeError("REST query returned with error status code 401")
        return [e for e in self.entries if {el.symbol for el in e.elements} <= set(elements)]


@pytest.fixture
def fake_mp(monkeypatch, mn_o_file):
    module = types.ModuleType("mp_api.client")
    module.MPRester = _FakeRester  # type: ignore[attr-defined]
    package = types.ModuleType("mp_api")
    package.client = module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mp_api", package)
    monkeypatch.setitem(sys.modules, "mp_api.client", module)
    _FakeRester.calls = []
    _FakeRester.entries = loadfn(mn_o_file)
    return _FakeRester


def test_mp_phases_with_the_client(fake_mp):
    phases, meta = mp_phases(["O-Mn", "Mn-O", "Mn"], "a-key")
    chemsys_calls = [c for c in fake_mp.calls if c[0] == "chemsys"]
    # each distinct system once, the GGA/GGA+U (MP2020) thermo type asked for explicitly
    assert chemsys_calls == [
        ("chemsys", ["Mn"], {"thermo_types": ["GGA_GGA+U"]}),
        ("chemsys", ["Mn", "O"], {"thermo_types": ["GGA_GGA+U"]}),
    ]
    assert sorted(p.id for p in phases) == sorted(MN_O_IDS)  # mp-35 once
    assert {p.energy_scheme for p in phases} == {MP2020}
    assert {p.source for p in phases} == {"materials_project"}
    assert phases[0].provenance["database_version"] == "2025.09.25"
    assert meta["database_version"] == "2025.09.25" and meta["n_entries"] == 6
    assert meta["fetched_at"].endswith("+00:00")
    assert meta["chemical_systems"] == ["Mn", "Mn-O"]


def test_mp_fetch_failure_is_a_source_error(fake_mp):
    with pytest.raises(KnownSourceError, match="fetching O-Xx failed: .*401"):
        mp_phases(["Xx-O"], "a-key")


@pytest.mark.online
def test_mp_real_fetch():
    key = mp_api_key(None)
    if key is None:
        pytest.skip("MP_API_KEY is not set")
    pytest.importorskip("mp_api")
    phases, meta = mp_phases(["Mn-O"], key)
    assert meta["n_entries"] == len(phases) > 20
    ids = {p.id for p in phases}
    assert {"mp-19006", "mp-35", "mp-12957"} <= ids  # MnO, Mn, O2
    assert all(p.elements <= {"Mn", "O"} for p in phases)
    mno = next(p for p in phases if p.id == "mp-19006")
    assert mno.energy_per_atom == pytest.approx(-9.048, abs=0.05)


# --- merging --------------------------------------------------------------------------------


def _rattled(structure: Structure, strain: float = 0.02, seed: int = 0) -> Structure:
    import numpy as np

    rng = np.random.default_rng(seed)
    s = structure.copy()
    s.apply_strain(strain)
    coords = s.cart_coords + rng.normal(0.0, 0.02, (len(s), 3))
    return Structure(s.lattice, s.species, coords, coords_are_cartesian=True)


def test_merge_earlier_sources_win_and_record_duplicates(mn_o_file):
    entries = entries_phases(mn_o_file, None)
    mno = entries[0]
    # a lab's own MnO (no energy) and a made-up CsCl-type MnO, listed before the database
    own = KnownPhase("my-MnO.cif", "structures", _rattled(mno.structure))
    cscl = KnownPhase(
        "cscl-MnO.cif",
        "structures",
        Structure(Lattice.cubic(2.83), ["Mn", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    )
    database_copy = KnownPhase(
        "mp-19006-copy", "bundled", mno.structure.copy(), mno.energy_per_atom + 0.1, MP2020
    )
    merged = merge_phases([[own, cscl], entries, [database_copy]])
    assert [p.id for p in merged] == ["my-MnO.cif", "cscl-MnO.cif", *MN_O_IDS[1:]]
    winner = merged[0]
    assert winner.structure is own.structure  # the winner's structure stays
    assert winner.provenance["also"] == ["entries:mp-19006", "bundled:mp-19006-copy"]
    # the energy of the first duplicate that has one, and where it came from
    assert winner.energy_per_atom == mno.energy_per_atom and winner.energy_scheme == MP2020
    assert winner.provenance["energy_from"] == "entries:mp-19006"
    assert merged[1].energy_per_atom is None and "also" not in merged[1].provenance
    # a winner with an energy keeps it
    merged = merge_phases([entries, [database_copy]])
    assert merged[0].energy_per_atom == mno.energy_per_atom
    assert merged[0].provenance["also"] == ["bundled:mp-19006-copy"]
    assert "energy_from" not in merged[0].provenance
    # nothing to merge: every phase unchanged
    assert merge_phases([entries]) == entries
    assert merge_phases([]) == []


def test_merge_within_one_source(mn_o_file):
    entries = entries_phases(mn_o_file, None)
    again = [KnownPhase(p.id + "-b", p.source, p.structure.copy()) for p in entries]
    merged = merge_phases([entries + again])
    assert [p.id for p in merged] == MN_O_IDS
    assert [p.provenance["also"] for p in merged] == [[f"entries:{i}-b"] for i in MN_O_IDS]
