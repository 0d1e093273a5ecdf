"""Known materials in a campaign: sources become references, candidates are judged novel or
known against them, a store reuses what it relaxed, and both hull modes on real MP entries."""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import cli, toy_config, write_config
from pymatgen.core import Lattice, Structure
from pymatgen.entries.computed_entries import ComputedStructureEntry

from discovery.config import ConfigError, load_config, parse_config
from discovery.engine.campaign_directory import CampaignDirectory
from discovery.engine.campaign_hull import current_hull, other_hull
from discovery.engine.context import CampaignContext
from discovery.engine.known_phases import known_phases, subsystems
from discovery.engine.reference_set import reference_rows
from discovery.store import Calculation, Candidate, ReviewItem
from discovery.store.convert import candidate_row


def cu_pd_phases(folder):
    """Two real Cu-Pd intermetallics as CIF files: L1_2 Cu3Pd (strained tetragonally, as an
    unrelaxed file might be) and B2 CuPd."""
    folder.mkdir()
    cu3pd = Structure(
        Lattice.tetragonal(3.55, 4.3),
        ["Pd", "Cu", "Cu", "Cu"],
        [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    cupd = Structure(Lattice.cubic(2.99), ["Cu", "Pd"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cu3pd.to(filename=str(folder / "Cu3Pd-L12.cif"))
    cupd.to(filename=str(folder / "CuPd-B2.cif"))
    # fcc Cu at twice its lattice constant: relaxing it shrinks the cell 8x, beyond the
    # simulator's volume limit, so it fails like a bad entry in a real file would
    expanded = Structure.from_spacegroup("Fm-3m", Lattice.cubic(7.2), ["Cu"], [[0, 0, 0]])
    expanded.to(filename=str(folder / "Cu-expanded.cif"))
    return folder


def toy_cu_pd(name: str, folder, **extra) -> dict:
    data = toy_config()
    data.update(name=name, chemical_systems=["Cu-Pd"], rounds=1, validation_budget=20)
    data["generation"]["substitution"]["budget"] = 14
    data["generation"]["random"]["budget"] = 4
    data["references"] = {"sources": [{"structures": str(folder)}]}
    data.update(extra)
    return data


def test_sources_parse_from_their_short_forms(tmp_path):
    cfg = parse_config(
        {**toy_config(), "references": {"sources": ["bundled", {"structures": "cifs"}]}}
    )
    assert [(s.kind, s.path) for s in cfg.references.sources] == [
        ("bundled", None),
        ("structures", "cifs"),
    ]
    with pytest.raises(ConfigError, match="needs 'path'"):
        parse_config({**toy_config(), "references": {"sources": [{"kind": "entries"}]}})
    assert subsystems(["Li-Mn-O"]) == [
        "Li", "Mn", "O", "Li-Mn", "Li-O", "Mn-O", "Li-Mn-O",
    ]  # fmt: skip


def test_the_materials_project_without_a_key_fails_at_load_and_creates_nothing(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    data = {**toy_config(), "references": {"sources": ["materials_project"]}}
    path = write_config(tmp_path / "mp.yaml", data)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "MP_API_KEY" in str(err.value) and "bundled" in str(err.value)
    result = cli("run", path, "--dir", tmp_path / "run")
    assert result.returncode == 2 and "MP_API_KEY" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_missing_entries_file_is_named(tmp_path):
    data = {**toy_config(), "references": {"sources": [{"entries": "absent.json.gz"}]}}
    with pytest.raises(ConfigError, match="absent.json.gz"):
        load_config(write_config(tmp_path / "c.yaml", data))


def test_known_structures_join_the_hull_and_known_candidates_stay_out_of_the_queue(tmp_path):
    folder = cu_pd_phases(tmp_path / "known")
    first = write_config(tmp_path / "a.yaml", toy_cu_pd("known-a", folder))
    result = cli("run", first, "--dir", tmp_path / "a")
    assert result.returncode == 0, result.stderr[-3000:]
    with sqlite3.connect(tmp_path / "a" / "campaign.db") as con:
        known = con.execute(
            "SELECT parent FROM candidates WHERE origin = 'known' AND is_reference"
        ).fetchall()
        verdicts = con.execute(
            "SELECT uid, novelty, known_id FROM candidates WHERE status = 'validated'"
        ).fetchall()
        queued = con.execute(
            "SELECT c.novelty FROM review_queue q JOIN candidates c ON c.id = q.candidate_id"
        ).fetchall()
    assert sorted(p for (p,) in known) == ["Cu-expanded.cif", "Cu3Pd-L12.cif", "CuPd-B2.cif"]
    with sqlite3.connect(tmp_path / "a" / "campaign.db") as con:
        failed = con.execute(
            "SELECT c.parent, k.error FROM calculations k JOIN candidates c ON c.id = "
            "k.candidate_id WHERE c.is_reference AND NOT k.ok"
        ).fetchall()
    # recorded as failed, named in a warning, and the campaign went on without it
    assert [p for p, _ in failed] == ["Cu-expanded.cif"] and "volume" in failed[0][1]
    assert "known-Cu-expanded.cif" in result.stderr and "failed to relax" in result.stderr
    assert {n for _, n, _ in verdicts} <= {"novel", "known", "new polymorph"}
    assert all(n != "known" for (n,) in queued)
    assert all(k is not None for _, n, k in verdicts if n == "known")
    listing = cli("review", "list", tmp_path / "a")
    assert listing.returncode == 0 and "novelty" in listing.stdout

    # A second campaign in the same store relaxes no reference again.
    url = f"sqlite:///{tmp_path / 'a' / 'campaign.db'}"
    second = write_config(
        tmp_path / "b.yaml",
        toy_cu_pd("known-b", folder, store={"url": url}, seed=5),
    )
    result = cli("run", second, "--dir", tmp_path / "b")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "reused from earlier campaigns" in result.stderr
    with sqlite3.connect(tmp_path / "a" / "campaign.db") as con:
        rows = con.execute(
            "SELECT cp.name, c.uid, k.energy_per_atom, k.wall_s FROM calculations k "
            "JOIN candidates c ON c.id = k.candidate_id JOIN campaigns cp ON cp.id = c.campaign_id "
            "WHERE c.is_reference"
        ).fetchall()
    by_campaign: dict[str, dict[str, tuple]] = {}
    for name, uid, energy, wall in rows:
        by_campaign.setdefault(name, {})[uid] = (energy, wall)
    assert by_campaign["known-a"] == by_campaign["known-b"]  # copies: same energy, same time


@pytest.fixture
def mn_o_context(tmp_path, shared_data):
    """A Mn-O campaign whose known phases are the six real MP entries, with simulator
    energies that equal MP's raw energies except MnO, shifted up by 0.2 eV/atom."""
    entries_file = shared_data / "mp" / "Mn-O_entries.json"
    data = {
        "name": "mn-o",
        "chemical_systems": ["Mn-O"],
        # SevenNet-0 learned MP's raw energies, which are given raw below and corrected
        "simulator": {"name": "sevennet", "formation_energy": "mp2020"},
        "references": {"sources": [{"entries": str(entries_file)}], "hull_mode": "database"},
    }
    cfg = parse_config(data)
    location = CampaignDirectory(tmp_path / "run")
    location.prepare(cfg)
    camp = location.open(cfg, read_only=False)
    ctx = CampaignContext(cfg, location, camp.db, camp.campaign_id, tracker=None, progress=None)
    raw = {
        e["entry_id"]: ComputedStructureEntry.from_dict(e)
        for e in json.loads(entries_file.read_text())
    }
    with ctx.db.session() as session:
        for uid, rec in reference_rows(cfg, known_phases(cfg)):
            if rec.origin != "known":
                continue
            row = candidate_row(rec, ctx.campaign_id, uid, -1, is_reference=True)
            session.add(row)
            session.flush()
            entry = raw[rec.parent]
            energy = entry.uncorrected_energy_per_atom + (0.2 if rec.parent == "mp-19006" else 0)
            session.add(
                Calculation(
                    candidate_id=row.id, simulator="sevennet", fidelity="sevennet", round_index=-1,
                    ok=True, converged=True, steps=1, wall_s=0.0,
                    energy=energy * len(rec.structure), energy_per_atom=energy,
                    final_structure=rec.structure.as_dict(),
                )
            )  # fmt: skip
    yield ctx
    ctx.db.dispose()


def test_both_hull_modes_on_the_mp_mn_o_entries(mn_o_context):
    ctx = mn_o_context
    with ctx.db.session() as session:
        names = {
            c.id: c.reduced_formula
            for c in session.query(Candidate).filter(Candidate.origin == "known")
        }
        hull, e_form = current_hull(ctx, session)  # database mode, as configured
        other = other_hull(ctx, session)
    assert other is not None
    same_hull, same_e_form = other
    database = {names[cid]: (e, hull.point(cid).e_above_hull) for cid, e in e_form.items()}
    # The formation energies of the shared data's README, every entry on its own hull.
    expected = {"MnO": -1.993, "Mn3O4": -2.065, "Mn2O3": -2.028, "MnO2": -1.820}
    for formula, e in expected.items():
        assert database[formula][0] == pytest.approx(e, abs=2e-3)
        assert database[formula][1] == pytest.approx(0.0, abs=1e-6)
    # On the simulator's own hull the shifted MnO is 0.2 eV/atom worse, and leaves the hull.
    same = {names[cid]: e for cid, e in same_e_form.items() if cid in names}
    # Re-correcting the raw energies gives 0.014 eV/atom more than the entries' own MP2020
    # corrections: the entries carry the constants of an older pymatgen (-0.7025 eV per O,
    # -1.681 per Mn; today's -0.687 and -1.668). The hull modes see that, as they should.
    delta = same["Mn3O4"] - database["Mn3O4"][0]
    assert delta == pytest.approx(0.0142, abs=1e-3)
    assert same["MnO"] - database["MnO"][0] == pytest.approx(0.2 + delta, abs=1e-3)
    mno = next(cid for cid, f in names.items() if f == "MnO")
    # MnO lies only ~0.2 eV/atom below the Mn-Mn3O4 tie line: shifted by 0.2 it leaves the
    # simulator's hull by the rest (0.015 eV/atom), while it stays on the database's.
    assert same_hull.point(mno).e_above_hull == pytest.approx(0.015, abs=3e-3)


def _validated(ctx, session, uid: str, structure: Structure, energy_per_atom: float) -> int:
    from discovery.domain.records import CandidateRecord

    row = candidate_row(CandidateRecord(structure, "random"), ctx.campaign_id, uid, 0, False)
    row.status = "validated"
    session.add(row)
    session.flush()
    session.add(
        Calculation(
            candidate_id=row.id, simulator="sevennet", fidelity="sevennet", round_index=0, ok=True,
            converged=True, steps=1, wall_s=0.0, energy=energy_per_atom * len(structure),
            energy_per_atom=energy_per_atom, final_structure=structure.as_dict(),
        )
    )  # fmt: skip
    return row.id


def test_each_validated_candidate_is_novel_known_or_a_new_polymorph(mn_o_context):
    from discovery.engine.campaign_hull import record_hull
    from discovery.engine.novelty_check import classify_round
    from discovery.engine.review_queue import fill_queue

    ctx = mn_o_context
    with ctx.db.session() as session:
        mno = next(c for c in session.query(Candidate).filter(Candidate.parent == "mp-19006"))
        rock_salt = Structure.from_dict(mno.structure)
        strained = rock_salt.copy()
        strained.apply_strain(0.03)
        cscl = Structure(Lattice.cubic(2.75), ["Mn", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
        mn3o5 = Structure(
            Lattice.cubic(4.4), ["Mn"] * 3 + ["O"] * 5,
            [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0.25, 0.25, 0.25], [0.75, 0.75, 0.25],
             [0.75, 0.25, 0.75], [0.25, 0.75, 0.75], [0.5, 0.5, 0.5]],
        )  # fmt: skip
        # very low energies: every one would be stable, so only novelty keeps one out
        ids = {
            "known": _validated(ctx, session, "r0-a", strained, -12.0),
            "polymorph": _validated(ctx, session, "r0-b", cscl, -12.0),
            "novel": _validated(ctx, session, "r0-c", mn3o5, -12.0),
        }
        counts = classify_round(ctx, session, 0)
        record_hull(ctx, session, 0)
    assert counts == {"novelty_known": 1, "novelty_new_polymorph": 1, "novelty_novel": 1}
    with ctx.db.session() as session:
        rows = {c.uid: (c.novelty, c.known_id) for c in session.query(Candidate)}
        queued = fill_queue(session, ctx.campaign_id, "sevennet", 0, size=5)
        in_queue = {q.candidate_id for q in session.query(ReviewItem)}
    assert rows["r0-a"] == ("known", "mp-19006")
    assert rows["r0-b"] == ("new polymorph", None) and rows["r0-c"] == ("novel", None)
    assert queued == 2 and ids["known"] not in in_queue


def test_excluded_known_phases_are_left_out(shared_data):
    entries_file = shared_data / "mp" / "Mn-O_entries.json"
    data = {
        "name": "hide",
        "chemical_systems": ["Mn-O"],
        "references": {
            "sources": [{"entries": str(entries_file)}],
            "exclude": ["mp-19006", "mp-18759"],
        },
    }
    ids = {p.id for p in known_phases(parse_config(data))}
    assert ids == {"mp-35", "mp-12957", "mp-1172875", "mp-19395"}
