"""Novelty against known structures: known, new polymorph of a known composition, novel."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pymatgen.core import Element, Lattice, Structure

from discovery.domain.known.entries_file import entries_phases
from discovery.domain.known.novelty import KNOWN, NEW_POLYMORPH, NOVEL, Novelty, NoveltyIndex
from discovery.domain.known.phase import KnownPhase
from discovery.domain.known.structure_folder import folder_phases


@pytest.fixture(scope="module")
def mn_o(shared_data) -> list[KnownPhase]:
    return entries_phases(shared_data / "mp" / "Mn-O_entries.json", None)


def relaxed(structure: Structure, seed: int, strain=(0.03, -0.02, 0.04), rattle=0.03):
    """A structure as a relaxation with another potential leaves it: a few per cent of strain
    and every atom moved by a few hundredths of an ångström."""
    rng = np.random.default_rng(seed)
    s = structure.copy()
    s.apply_strain(list(strain))
    coords = s.cart_coords + rng.normal(0.0, rattle, (len(s), 3))
    return Structure(s.lattice, s.species, coords, coords_are_cartesian=True)


def test_relaxed_copies_of_known_structures_are_known(mn_o):
    index = NoveltyIndex(mn_o)
    assert len(index) == 6
    for seed, phase in enumerate(mn_o):
        novelty = index.classify(relaxed(phase.structure, seed))
        assert novelty == Novelty(KNOWN, phase.id, (phase.id,)), phase.id
    # a supercell, an oxidation-decorated copy and a compressed one are the same phase
    mno = mn_o[0].structure
    assert index.classify(mno * (2, 1, 1)).known_id == "mp-19006"
    decorated = mno.copy()
    decorated.add_oxidation_state_by_element({"Mn": 2, "O": -2})
    assert index.classify(decorated).known_id == "mp-19006"
    squeezed = mno.copy()
    squeezed.scale_lattice(mno.volume * 0.85)
    assert index.classify(squeezed).status == KNOWN


def test_other_polymorph_of_a_known_formula(mn_o, shared_data):
    index = NoveltyIndex(mn_o)
    # CsCl-type MnO at the volume per atom of rock salt: compared, and no match
    volume_per_atom = mn_o[0].structure.volume / len(mn_o[0].structure)
    a = (2 * volume_per_atom) ** (1 / 3)
    cscl = Structure(Lattice.cubic(a), ["Mn", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert index.classify(cscl) == Novelty(NEW_POLYMORPH, None, ("mp-19006",))
    assert index.fits >= 1
    # a real MnO structure that is another phase (CHGNet's example, P3m1)
    (chgnet_mno,) = folder_phases(shared_data / "structures" / "chgnet" / "MnO.cif", None)
    assert index.classify(chgnet_mno.structure).status == NEW_POLYMORPH


def test_new_formula_is_novel(mn_o, shared_data):
    index = NoveltyIndex(mn_o)
    limno2 = folder_phases(shared_data / "structures" / "chgnet" / "mp-18767-LiMnO2.cif", None)
    assert index.classify(limno2[0].structure) == Novelty(NOVEL)
    # Mn2O3 is known, Mn2O5 is not
    mn2o3 = next(p for p in mn_o if p.reduced_formula == "Mn2O3").structure
    assert index.classify(mn2o3).status == KNOWN
    assert NoveltyIndex([]).classify(mn2o3) == Novelty(NOVEL)


def test_volume_band_is_a_heuristic_that_can_be_switched_off(mn_o):
    mno = mn_o[0].structure
    swollen = mno.copy()
    swollen.scale_lattice(mno.volume * 1.6)  # far outside any relaxation
    assert NoveltyIndex(mn_o).classify(swollen).status == NEW_POLYMORPH
    assert NoveltyIndex(mn_o, volume_tolerance=None).classify(swollen).status == KNOWN


def _prototypes(a: str, b: str) -> list[Structure]:
    """Rock salt, CsCl and zinc blende AB, fluorite AB2, Cu3Au AB3: small primitive cells."""
    fcc = Lattice([[0, 2.2, 2.2], [2.2, 0, 2.2], [2.2, 2.2, 0]])
    return [
        Structure(fcc, [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        Structure(Lattice.cubic(2.8), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        Structure(fcc, [a, b], [[0, 0, 0], [0.25, 0.25, 0.25]]),
        Structure(fcc, [a, b, b], [[0, 0, 0], [0.25, 0.25, 0.25], [0.75, 0.75, 0.75]]),
        Structure(
            Lattice.cubic(3.8),
            [a, b, b, b],
            [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        ),
    ]


def test_index_of_100000_phases_classifies_in_milliseconds():
    """10^5 known phases over ~2,000 formulas: building the index and classifying a known, a
    new-polymorph and a novel structure stay fast, because only the structure's own formula
    bucket is ever compared."""
    anions = ["O", "S", "Se", "Te", "F", "Cl", "Br", "I", "N", "P"]
    cations = [
        e.symbol for e in Element if e.Z <= 83 and not e.is_noble_gas and e.symbol not in anions
    ][:48]
    structures = [s for a in cations for b in anions for s in _prototypes(a, b)]
    assert len(structures) == 2400
    # every structure under 42 ids (database entries of one phase), lattices scaled a little
    phases = []
    for i, s in enumerate(structures):
        for k in range(42):
            if k % 6 == 0:
                s = s.copy()
                s.scale_lattice(s.volume * 1.01)
            phases.append(KnownPhase(f"x-{i}-{k}", "bundled", s))
    assert len(phases) > 100_000

    start = time.perf_counter()
    index = NoveltyIndex(phases)
    built = time.perf_counter() - start
    assert len(index) == len(phases)

    fcc = Lattice([[0, 2.3, 2.3], [2.3, 0, 2.3], [2.3, 2.3, 0]])
    rock_salt = relaxed(Structure(fcc, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]), 0)
    nias = Structure(
        Lattice.hexagonal(3.4, 5.2),
        ["Na", "Na", "Cl", "Cl"],
        [[0, 0, 0], [0, 0, 0.5], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]],
    )
    ternary = Structure(Lattice.cubic(4.0), ["Na", "Cl", "O"], [[0, 0, 0], [0.5] * 3, [0.5, 0, 0]])
    timings = {}
    for name, structure, status in [
        ("known", rock_salt, KNOWN),
        ("new polymorph", nias, NEW_POLYMORPH),
        ("novel", ternary, NOVEL),
    ]:
        start = time.perf_counter()
        novelty = index.classify(structure)
        timings[name] = time.perf_counter() - start
        assert novelty.status == status, name
        if status != NOVEL:
            assert len(novelty.known_ids_of_formula) == 3 * 42  # rock salt, CsCl, zinc blende
    assert built < 20  # 0.5 s here (16,800 distinct Structure objects)
    assert max(timings.values()) < 0.5, timings  # here: 15 ms, 31 ms and 0.1 ms
