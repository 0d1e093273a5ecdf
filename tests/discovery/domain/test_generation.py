from __future__ import annotations

from itertools import islice

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure

from discovery.config import CampaignConfig
from discovery.domain.generation.compositions import enumerate_compositions
from discovery.domain.generation.dedup import Deduplicator
from discovery.domain.generation.filters import min_interatomic_distance, rejection_reason
from discovery.domain.generation.prototypes import (
    expected_composition,
    prototype_structure,
    prototypes,
)
from discovery.domain.generation.random_search import RandomSearchGenerator
from discovery.domain.generation.substitution import enumerate_substitutions
from discovery.domain.reference_structures import (
    elemental_polymorphs,
    known_compound,
    reference_records,
)
from discovery.engine.candidate_generation import generate_candidates


@pytest.mark.parametrize("proto", prototypes(), ids=lambda p: p.name)
def test_prototypes_have_their_composition_and_sane_distances(proto):
    s = prototype_structure(proto.name)
    got = s.composition.element_composition.reduced_composition
    assert got.almost_equals(expected_composition(proto).reduced_composition)
    assert min_interatomic_distance(s) > 1.4


def test_prototype_structure_is_a_copy():
    a = prototype_structure("rocksalt-MgO")
    a.scale_lattice(1000)
    assert prototype_structure("rocksalt-MgO").volume < 100


def test_ionic_substitutions_are_charge_neutral_and_above_threshold():
    subs = enumerate_substitutions(("Li", "Mn", "O"), 0.001)
    by_parent = {(c.parent, c.structure.composition.reduced_formula) for _, c in subs}
    assert ("rocksalt-MgO", "MnO") in by_parent
    assert ("layered-LiCoO2", "LiMnO2") in by_parent
    assert ("rutile-TiO2", "MnO2") in by_parent
    # Li+ for Mg2+ would leave rock salt LiO charged: never proposed
    assert all(c.structure.composition.reduced_formula != "LiO" for _, c in subs)
    for p, c in subs:
        assert p >= 0.001
        assert c.origin == "substitution" and c.detail["map"]
    # a stricter threshold keeps a subset
    strict = enumerate_substitutions(("Li", "Mn", "O"), 0.03)
    assert 0 < len(strict) < len(subs)


def test_metallic_prototypes_only_for_metals():
    subs = enumerate_substitutions(("Cu", "Au", "Pd"), 0.001)
    formulas = {c.structure.composition.reduced_formula for _, c in subs}
    assert {"Cu3Au", "CuAu", "Cu2PdAu"} <= formulas
    oxide = enumerate_substitutions(("Cu", "O"), 0.001)
    assert all(not c.parent.startswith(("L1_", "B2", "D0_3")) for _, c in oxide)


def test_compositions_charge_balanced_and_bounded():
    comps = enumerate_compositions(("Li", "Mn", "O"), 6, charge_balanced=True)
    formulas = {c.reduced_formula for c in comps}
    assert {"Li2O", "MnO", "MnO2", "LiMnO2"} <= formulas
    assert "LiO3" not in formulas  # not charge balanced
    assert all(c.num_atoms <= 6 for c in comps)
    free = enumerate_compositions(("Cu", "Au"), 4, charge_balanced=False)
    assert [c.reduced_formula for c in free] == ["CuAu", "Cu2Au", "CuAu2", "Cu3Au", "CuAu3"]


def test_random_search_is_seeded():
    comps = [Composition("Cu3Au"), Composition("CuAu")]
    gen = RandomSearchGenerator(comps, 2, (2, 230), 8, 8)
    a = [r.structure for r in islice(gen.generate(np.random.default_rng(1)), 3)]
    b = [r.structure for r in islice(gen.generate(np.random.default_rng(1)), 3)]
    assert all(x == y for x, y in zip(a, b, strict=True))
    assert all(len(s) <= 8 for s in a)


def test_dedup_matches_supercells_and_rescaled_cells():
    s = prototype_structure("L1_0-CuAu")
    d = Deduplicator()
    assert d.add_if_new(s)
    big = s * (2, 1, 1)
    big.scale_lattice(big.volume * 1.05)
    assert not d.add_if_new(big)
    assert d.add_if_new(prototype_structure("L1_1-CuPt").copy().replace_species({"Pt": "Au"}))
    assert len(d) == 2


def test_filters():
    close = Structure(Lattice.cubic(5), ["Cu", "Cu"], [[0, 0, 0], [0.05, 0, 0]])
    assert rejection_reason(close, 0.7, 10) == "atoms too close"
    assert rejection_reason(prototype_structure("L1_2-Cu3Au"), 0.7, 2) == "too many sites"
    disordered = Structure(Lattice.cubic(3.6), [{"Cu": 0.5, "Au": 0.5}], [[0, 0, 0]])
    assert rejection_reason(disordered, 0.7, 10) == "partial occupancy"
    assert rejection_reason(prototype_structure("L1_2-Cu3Au"), 0.7, 10) is None


def test_generate_candidates_respects_budgets_and_history():
    config = CampaignConfig(
        name="t",
        chemical_systems=["Cu-Au"],
        generation={
            "substitution": {"budget": 4},
            "random": {"budget": 3},
            "compositions": {"max_atoms": 4, "charge_balanced": False},
            "min_distance": 1.5,
            "max_sites": 8,
        },
    )
    seen = Deduplicator()
    first, stats = generate_candidates(config, np.random.default_rng(0), seen)
    assert len([r for r in first if r.origin == "substitution"]) == 4
    assert len([r for r in first if r.origin == "random"]) <= 3
    assert stats.accepted == len(first)
    again, stats2 = generate_candidates(config, np.random.default_rng(0), seen)
    # the same seed again proposes the same structures first: all rejected as duplicates
    assert stats2.rejected["duplicate"] >= len(first)
    first_keys = {r.structure.composition.reduced_formula for r in first}
    assert first_keys  # sanity
    for new in again:
        assert all(not Deduplicator().matcher.fit(new.structure, old.structure) for old in first)


def test_references():
    cu = elemental_polymorphs("Cu")
    assert {r.parent for r in cu} == {"fcc-Cu", "bcc-Cu", "hcp-Cu"}
    (o2,) = elemental_polymorphs("O")
    assert o2.detail["fixed_cell"] and len(o2.structure) == 2
    rec = known_compound("antifluorite-Li2O:O,Li")
    assert rec.structure.composition.reduced_formula == "Li2O"
    with pytest.raises(ValueError, match="has 2 species"):
        known_compound("rocksalt-MgO:Mn")
    with pytest.raises(KeyError, match="unknown prototype"):
        known_compound("nothing:Cu,Au")
    with pytest.raises(ValueError, match="contains Mg, which is not in the chemical systems"):
        reference_records(("Mn", "O"), ["rocksalt-MgO:Mg,O"])
