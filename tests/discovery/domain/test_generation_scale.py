"""Issue 5: prototypes, substitution (full and partial), compositions, random search,
bucketed de-duplication and novelty, user structure files, and their config checks."""

from __future__ import annotations

import itertools
import json
from itertools import islice

import numpy as np
import pytest
from conftest import toy_config, write_config
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from pymatgen.symmetry.groups import SpaceGroup

from discovery.config import CampaignConfig, ConfigError, load_config
from discovery.domain.generation.compositions import enumerate_compositions
from discovery.domain.generation.dedup import BucketKey, Deduplicator, bucket_key, dedup_key
from discovery.domain.generation.filters import rejection_reason
from discovery.domain.generation.partial import (
    Parent,
    distinct_subsets,
    orbits,
    partial_substitutions,
    site_permutations,
)
from discovery.domain.generation.prototypes import prototype_structure, prototypes
from discovery.domain.generation.random_search import RandomSearchGenerator
from discovery.domain.generation.substitution import enumerate_substitutions, user_prototype
from discovery.domain.generation.user_structures import StructureFileError, load_structures
from discovery.engine.candidate_generation import build_generators, generate_candidates


def _spg(structure: Structure, symprec: float = 0.01) -> int:
    return SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number()


def test_library_has_at_least_30_prototypes():
    assert len(prototypes()) >= 30


@pytest.mark.parametrize("proto", prototypes(), ids=lambda p: p.name)
def test_each_prototype_reproduces_its_space_group(proto):
    assert _spg(prototype_structure(proto.name)) == SpaceGroup(proto.spacegroup).int_number


def test_na_to_k_in_rock_salt_gives_kcl_with_the_same_space_group():
    subs = enumerate_substitutions(("K", "Cl"), 0.001, ["rocksalt-NaCl"])
    (kcl,) = [r for _, r in subs if r.structure.composition.reduced_formula == "KCl"]
    assert kcl.parent == "rocksalt-NaCl" and kcl.detail["map"] == {"Na+": "K+", "Cl-": "Cl-"}
    assert _spg(kcl.structure) == _spg(prototype_structure("rocksalt-NaCl")) == 225
    # K+ is larger than Na+: the cell grows
    assert kcl.structure.volume > prototype_structure("rocksalt-NaCl").volume


def _brute_force_classes(cell: Structure, orbit: list[int], k: int, new: str) -> int:
    """Number of distinct crystals among all k-subsets of the orbit, by StructureMatcher."""
    matcher = StructureMatcher()
    reps: list[Structure] = []
    for subset in itertools.combinations(orbit, k):
        s = cell.copy()
        for i in subset:
            s.replace(i, new)
        if not any(matcher.fit(s, r) for r in reps):
            reps.append(s)
    return len(reps)


@pytest.mark.parametrize(
    "name, elements, max_sites",
    [("rocksalt-NaCl", ("Na", "K", "Cl"), 8), ("C15-MgCu2", ("Mg", "Cu", "Al"), 6)],
)
def test_partial_substitution_yields_symmetry_distinct_orderings_only(name, elements, max_sites):
    base = prototype_structure(name)
    base.remove_oxidation_states()
    out = partial_substitutions(Parent(name, base, {}), elements, 0.001, max_sites, 100)
    assert out
    matcher = StructureMatcher()
    structures = [r.structure for _, r in out]
    for a, b in itertools.combinations(structures, 2):
        assert not matcher.fit(a, b)
    for _, rec in out:
        d = rec.detail
        assert rec.origin == "partial" and rec.parent == name
        assert d["parent"] == name and d["replace"] != d["by"] and "/" in d["fraction"]
        json.dumps(d)  # stored as JSON
    # and nothing is lost: as many orderings as distinct crystals by brute force
    (cell,) = [s for s in {len(r.structure): r.structure for _, r in out}.values()][:1]
    first = out[0][1].detail
    parent_cell = cell.copy()
    for i in first["sites"]:
        parent_cell.replace(i, first["replace"])
    orbit = next(o for o in orbits(parent_cell) if first["sites"][0] in o)
    k = len(first["sites"])
    ours = [
        r
        for _, r in out
        if r.detail["by"] == first["by"]
        and r.detail["replace"] == first["replace"]
        and len(r.detail["sites"]) == k
        and len(r.structure) == len(parent_cell)
        and r.detail["sites"][0] in orbit
    ]
    assert len(ours) == _brute_force_classes(parent_cell, orbit, k, first["by"])


def test_distinct_subsets_of_a_square_of_four():
    # four sites of a square (p4mm in a slab): 2-subsets are edges or diagonals, 2 classes
    s = Structure(
        Lattice.tetragonal(6, 20),
        ["Cu"] * 4,
        [[0.3, 0.3, 0.5], [0.7, 0.3, 0.5], [0.7, 0.7, 0.5], [0.3, 0.7, 0.5]],
    )
    perms = site_permutations(s)
    assert len(distinct_subsets([0, 1, 2, 3], 2, perms)) == 2
    assert len(distinct_subsets([0, 1, 2, 3], 1, perms)) == 1


def test_smact_rejects_nacl2_and_accepts_li2mno3():
    nacl = {c.reduced_formula for c in enumerate_compositions(("Na", "Cl"), 3, True)}
    assert "NaCl" in nacl and "NaCl2" not in nacl
    limno = {c.reduced_formula for c in enumerate_compositions(("Li", "Mn", "O"), 6, True)}
    assert "Li2MnO3" in limno
    # switched off (intermetallics), NaCl2 is enumerated
    assert "NaCl2" in {c.reduced_formula for c in enumerate_compositions(("Na", "Cl"), 3, False)}


def test_pyxtal_output_passes_the_validity_filter():
    gen = RandomSearchGenerator([Composition("LiMnO2"), Composition("Li2O")], 2, (2, 230), 16, 8)
    records = list(islice(gen.generate(np.random.default_rng(3)), 6))
    assert len(records) == 6
    for rec in records:
        assert rejection_reason(rec.structure, 0.7, 16) is None
        assert rec.detail["space_group"] and rec.detail["composition"]


def _plant(original: Structure, rng: np.random.Generator, kind: str) -> Structure:
    s = original.copy()
    if kind == "supercell":
        s.make_supercell([2, 1, 1])
    elif kind == "permuted":
        s = Structure.from_sites([s[int(i)] for i in rng.permutation(len(s))])
    elif kind == "shift":
        s.translate_sites(list(range(len(s))), rng.random(3))
    elif kind == "displaced":
        for i in range(len(s)):
            step = rng.normal(size=3)
            s.translate_sites([i], 0.06 * step / np.linalg.norm(step), frac_coords=False)
    return s


def test_planted_duplicates_are_found_and_distinct_structures_kept():
    rng = np.random.default_rng(0)
    gen = RandomSearchGenerator([Composition("LiMnO2"), Composition("CuAu")], 2, (2, 230), 8, 8)
    originals = [r.structure for r in islice(gen.generate(rng), 12)]
    originals += [prototype_structure(n) for n in ("rocksalt-NaCl", "L1_0-CuAu", "B2-CuZn")]
    # certify the originals distinct with the plain matcher
    plain = StructureMatcher()
    originals = [
        s for i, s in enumerate(originals) if not any(plain.fit(s, o) for o in originals[:i])
    ]
    dedup = Deduplicator()
    for s in originals:
        assert dedup.add_if_new(s)
    kinds = ("supercell", "permuted", "shift", "displaced")
    for s in originals:
        for kind in kinds:
            copy = _plant(s, rng, kind)
            match = dedup.find(copy)
            assert match is s, kind
            # the exact invariants of the key hold for every planted copy
            assert bucket_key(copy).coarse == bucket_key(s).coarse
    assert len(dedup) == len(originals)


def test_a_copy_that_lost_symmetry_is_found_through_the_fallback():
    s = prototype_structure("perovskite-SrTiO3")
    s.remove_oxidation_states()
    moved = s.copy()
    moved.translate_sites([1], [0, 0, 0.3], frac_coords=False)  # Ti off-centre: tetragonal
    assert bucket_key(moved).spacegroup != bucket_key(s).spacegroup
    strict = Deduplicator(symmetry_fallback=False)
    strict.add(s)
    assert strict.find(moved) is None
    fallback = Deduplicator()
    fallback.add(s)
    assert fallback.find(moved) is s


def test_key_text_round_trips_and_legacy_keys_parse_to_none():
    key = bucket_key(prototype_structure("rutile-TiO2"))
    assert key == BucketKey("TiO2", 6, 136)
    assert BucketKey.parse(str(key)) == key
    assert dedup_key(prototype_structure("rutile-TiO2")) == "TiO2|6|136"
    assert BucketKey.parse("TiO2") is None


def test_loader_reads_each_coarse_bucket_once():
    stored = prototype_structure("rocksalt-MgO")
    stored.remove_oxidation_states()
    calls = []

    def loader(formula, nprim):
        calls.append((formula, nprim))
        return [(dedup_key(stored), stored)] if formula == "MgO" else []

    dedup = Deduplicator(loader=loader)
    assert not dedup.add_if_new(stored * (1, 1, 2))  # found in the store
    assert dedup.add_if_new(prototype_structure("zincblende-ZnS"))
    assert not dedup.add_if_new(stored.copy())
    assert calls == [("MgO", 2), ("ZnS", 2)]


def test_known_structures_and_user_parents(tmp_path):
    (tmp_path / "known").mkdir()
    mgo = prototype_structure("rocksalt-MgO")
    mgo.remove_oxidation_states()
    mgo.to(filename=str(tmp_path / "known" / "MgO.cif"))
    config = CampaignConfig(
        name="t",
        chemical_systems=["Mg-O"],
        generation={
            "substitution": {"budget": 20},
            "random": {"enabled": False},
            "known": [str(tmp_path / "known")],
        },
    )
    from discovery.domain.generation.user_structures import load_structures as load

    seen = Deduplicator()
    for _, s in load(config.generation.known):
        seen.add(s)
    records, stats = generate_candidates(config, np.random.default_rng(0), seen)
    assert stats.rejected["duplicate"] >= 1  # rock-salt MgO is known
    assert all(not StructureMatcher().fit(r.structure, mgo) for r in records)


def test_user_structures_become_parents_with_guessed_oxidation_states(tmp_path):
    # a LiFeO2 rock-salt ordering as a user file, no oxidation states in it
    s = Structure(
        Lattice.cubic(4.2),
        ["Li", "Li", "Fe", "Fe", "O", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
         [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5]],
    )  # fmt: skip
    (tmp_path / "LiFeO2.json").write_text(json.dumps(s.as_dict()))
    ((name, loaded),) = load_structures([str(tmp_path)])
    proto = user_prototype(name, loaded)
    assert proto.ionic
    subs = enumerate_substitutions(("Li", "Mn", "O"), 0.001, [], [proto])
    assert {r.structure.composition.reduced_formula for _, r in subs} == {"LiMnO2"}
    assert all(r.parent == "LiFeO2.json" for _, r in subs)
    config = CampaignConfig(
        name="t",
        chemical_systems=["Li-Mn-O"],
        generation={
            "substitution": {"budget": 5, "prototypes": ["rocksalt-MgO"]},
            "partial": {"enabled": True, "budget": 5},
            "random": {"enabled": False},
            "structures": [str(tmp_path)],
        },
    )
    names = [g.name for g, _ in build_generators(config)]
    assert names == ["substitution", "partial"]
    records, _ = generate_candidates(config, np.random.default_rng(0), Deduplicator())
    assert {r.origin for r in records} == {"substitution", "partial"}
    for r in records:
        assert r.parent and (r.detail.get("map") or r.detail.get("replace"))


POSCAR = """Cu
1.0
3.6 0 0
0 3.6 0
0 0 3.6
Cu
4
direct
0 0 0
0.5 0.5 0
0.5 0 0.5
0 0.5 0.5
"""

EXTXYZ = """2
Lattice="3.0 0.0 0.0 0.0 3.0 0.0 0.0 0.0 3.0" Properties=species:S:1:pos:R:3 pbc="T T T"
Cu 0.0 0.0 0.0
Zn 1.5 1.5 1.5
"""

DISORDERED_CIF = """data_CuAu
_cell_length_a 3.8
_cell_length_b 3.8
_cell_length_c 3.8
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Cu1 Cu 0 0 0 0.5
Au1 Au 0 0 0 0.5
Cu2 Cu 0.5 0.5 0 1
Cu3 Cu 0.5 0 0.5 1
Cu4 Cu 0 0.5 0.5 1
"""


def test_every_supported_format_loads(tmp_path):
    (tmp_path / "POSCAR").write_text(POSCAR)
    (tmp_path / "b2.extxyz").write_text(EXTXYZ)
    prototype_structure("L1_0-CuAu").to(filename=str(tmp_path / "cuau.cif"))
    (tmp_path / "notes.txt").write_text("ignored")
    loaded = dict(load_structures([str(tmp_path)]))
    assert set(loaded) == {"POSCAR", "b2.extxyz", "cuau.cif"}
    assert loaded["b2.extxyz"].composition.reduced_formula == "ZnCu"
    assert len(loaded["POSCAR"]) == 4


def test_partial_occupancy_is_rejected_by_name_or_ordered_on_request(tmp_path):
    path = tmp_path / "disordered.cif"
    path.write_text(DISORDERED_CIF)
    with pytest.raises(StructureFileError, match="disordered.cif: partial occupancy"):
        load_structures([str(path)])
    ((_, ordered),) = load_structures([str(path)], order_disordered=True)
    assert ordered.is_ordered
    assert ordered.composition.reduced_formula == "Cu7Au"  # 2 cells: 1 of 2 mixed sites Au


def test_unparsable_file_fails_naming_the_file(tmp_path):
    bad = tmp_path / "broken.cif"
    bad.write_text("data_x\n_cell_length_a nonsense\n")
    with pytest.raises(StructureFileError, match="broken.cif: cannot parse"):
        load_structures([str(bad)])


@pytest.mark.parametrize("field", ["structures", "known"])
def test_config_with_a_bad_structure_file_names_field_and_file(tmp_path, field):
    (tmp_path / "broken.vasp").write_text("not a poscar\n")
    data = toy_config()
    data["generation"] = {field: ["broken.vasp"]}
    path = write_config(tmp_path / "c.yaml", data)
    with pytest.raises(ConfigError, match=rf"'generation.{field}'.*broken.vasp"):
        load_config(path)


def test_config_resolves_structure_folders_relative_to_the_yaml(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "POSCAR").write_text(POSCAR)
    data = toy_config()
    data["generation"] = {"structures": ["mine"], "partial": {"enabled": True, "budget": 3}}
    config = load_config(write_config(tmp_path / "c.yaml", data))
    assert config.generation.structures == [str((tmp_path / "mine").resolve())]
    assert config.generation.partial.budget == 3


@pytest.mark.parametrize(
    "generation, expected",
    [
        ({"substitution": {"prototypes": ["nope-XY"]}}, "'generation.substitution.prototypes'"),
        ({"random": {"space_groups": [0, 10]}}, "'generation.random.space_groups'"),
        ({"random": {"space_groups": [1, 231]}}, "1 <= low <= high <= 230"),
        ({"partial": {"budget": -1}}, "'generation.partial.budget'"),
        ({"partial": {"colour": 1}}, "unknown field 'generation.partial.colour'"),
    ],
)
def test_bad_generation_config_names_the_field(tmp_path, generation, expected):
    data = toy_config()
    data["generation"] = generation
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(")):
        load_config(write_config(tmp_path / "c.yaml", data))


def test_unknown_element_names_the_field(tmp_path):
    data = toy_config()
    data["chemical_systems"] = ["Li-Qq-O"]
    with pytest.raises(ConfigError, match="'chemical_systems'.*unknown element 'Qq'"):
        load_config(write_config(tmp_path / "c.yaml", data))


def test_density_filter_and_its_config():
    nacl = prototype_structure("rocksalt-NaCl")
    assert rejection_reason(nacl, 0.7, 10, (0.5, 25.0)) is None
    fluffy = nacl.copy()
    fluffy.scale_lattice(nacl.volume * 20)
    assert rejection_reason(fluffy, 0.7, 10, (0.5, 25.0)) == "density out of range"
    data = toy_config()
    data["generation"] = {"density_range": [5, 1]}
    with pytest.raises(ConfigError, match="'generation.density_range'"):
        from discovery.config import parse_config

        parse_config(data)


def test_rejections_are_counted_by_reason():
    config = CampaignConfig(
        name="t",
        chemical_systems=["Cu-Au"],
        generation={
            "substitution": {"budget": 4},
            "random": {"enabled": False},
            "density_range": [0.5, 5.0],  # every Cu-Au compound is denser
        },
    )
    records, stats = generate_candidates(config, np.random.default_rng(0), Deduplicator())
    assert not records and stats.rejected["density out of range"] > 0
    assert (
        stats.as_metrics()["rejected_density_out_of_range"]
        == stats.rejected["density out of range"]
    )


def test_random_search_can_draw_n_per_composition():
    comps = [Composition("CuAu"), Composition("Cu3Au"), Composition("CuAu3")]
    gen = RandomSearchGenerator(comps, 2, (2, 230), 8, 8, per_composition=3)
    formulas = [
        r.structure.composition.reduced_formula for r in gen.generate(np.random.default_rng(0))
    ]
    # the generator ends after n draws of each; a draw pyxtal cannot place yields nothing
    assert 0 < len(formulas) <= 9
    blocks = [f for i, f in enumerate(formulas) if i == 0 or formulas[i - 1] != f]
    assert len(blocks) == len(set(blocks))  # each composition's draws come together
    assert all(formulas.count(f) <= 3 for f in blocks)


def test_generate_stage_reads_only_the_buckets_new_structures_fall_into(tmp_path):
    from types import SimpleNamespace

    from discovery.domain.records import CandidateRecord
    from discovery.engine.stages.generate import _history
    from discovery.store import Campaign, Candidate, Database
    from discovery.store.convert import candidate_row

    db = Database(f"sqlite:///{tmp_path / 'campaign.db'}")
    cuau = prototype_structure("L1_0-CuAu")
    cu3au = prototype_structure("L1_2-Cu3Au")
    with db.session() as s:
        s.add(Campaign(name="t", config_yaml=""))
        s.flush()
        for uid, st in (("a", cuau), ("b", cu3au)):
            s.add(candidate_row(CandidateRecord(st, "random"), 1, uid, 0, False))
        # a row from before keys had three parts: read in full, once
        legacy = candidate_row(
            CandidateRecord(prototype_structure("B2-CuZn"), "random"), 1, "c", 0, False
        )
        legacy.dedup_key = "CuZn"
        s.add(legacy)
    config = CampaignConfig(name="t", chemical_systems=["Cu-Au-Zn"])
    ctx = SimpleNamespace(campaign_id=1, config=config)
    statements = []
    from sqlalchemy import event

    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with db.session() as s:
        seen = _history(ctx, s)
        assert len(seen) == 1  # only the legacy row so far
        assert not seen.add_if_new(cuau * (2, 1, 1))  # stored CuAu, found via its bucket
        assert not seen.add_if_new(prototype_structure("B2-CuZn"))  # the legacy row
        assert seen.add_if_new(
            prototype_structure("L1_1-CuPt").copy().replace_species({"Pt": "Au"})
        )
        assert len(seen) == 3  # Cu3Au was never read: nothing fell into its bucket
    loads = [q for q in statements if "LIKE" in q.upper() and "NOT LIKE" not in q.upper()]
    # CuAu|2| and CuZn|2|, each once (the L1_1 CuAu ordering shares CuAu|2|); never Cu3Au
    assert len(loads) == 2
    assert all(Candidate.__tablename__ in q for q in loads)
    db.dispose()


def test_compositions_ranked_before_structures_are_built():
    config = CampaignConfig(
        name="t",
        chemical_systems=["Li-Mn-O"],
        generation={
            "substitution": {"enabled": False},
            "compositions": {"max_atoms": 6, "rank_by_model": True, "keep_top": 2},
        },
    )

    def rank(comps):  # a stand-in model: prefers compositions rich in O
        return [-c.get_atomic_fraction("O") for c in comps]

    ((unranked, _),) = build_generators(config)
    ((ranked, _),) = build_generators(config, rank)
    assert len(unranked.compositions) > 2
    best = sorted(unranked.compositions, key=lambda c: -c.get_atomic_fraction("O"))[:2]
    assert [c.reduced_formula for c in ranked.compositions] == [c.reduced_formula for c in best]
