"""Tests for simulators/: EMT relaxations, failure handling, custom calculators, CHGNet,
SevenNet-0, the wall-time limit and starting magnetic moments."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from pymatgen.core import Lattice, Structure

from simulators import (
    RelaxResult,
    RelaxSettings,
    Simulator,
    available_simulators,
    make_calculator,
    relax_structure,
)
from simulators.calculators import elements_supported
from simulators.magnetism import set_initial_moments
from simulators.sanity import _pair_distances, out_of_time, too_close

# Tiny models and small cells: one torch and one BLAS thread (see conftest.single_thread).
pytestmark = pytest.mark.usefixtures("single_thread")

FCC = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
LIMNO2_CIF = Path("/work/shared/data/structures/chgnet/mp-18767-LiMnO2.cif")
TIGHT = RelaxSettings(fmax=1e-3)
# Measured with CHGNet 0.3.0 weights on CPU (float32, hence rel 1e-3 tolerances).
MNO_ENERGY_PER_ATOM = -8.97981
LIMNO2_ENERGY_PER_ATOM = -7.36774
# Measured with SevenNet-0 (sevenn 0.13.0) on CPU, relaxed to fmax 1e-3 eV/Å.
# CHGNet 0.3.0, relaxed to fmax 1e-3 from diamond Si (5.43 Å) and rock-salt NaCl (5.64 Å).
CHGNET_SI_ENERGY_PER_ATOM = -5.31383
CHGNET_NACL_ENERGY_PER_ATOM = -3.66798
SEVENNET_SI_ENERGY_PER_ATOM = -5.40298
SEVENNET_NACL_ENERGY_PER_ATOM = -3.38396

# Written to a temporary directory so the tests need no helper files in the repo.
HELPER_MODULE = textwrap.dedent(
    '''
    import time

    import numpy as np
    from ase.calculators.calculator import Calculator, all_changes
    from ase.calculators.emt import EMT


    class Scripted(Calculator):
        """Misbehaves on request, to exercise the failure paths."""

        implemented_properties = ["energy", "forces", "stress"]

        def __init__(self, mode="ok", **kwargs):
            super().__init__(**kwargs)
            self.mode = mode

        def calculate(self, atoms=None, properties=None, system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            if self.mode == "raise":
                raise RuntimeError("scripted failure in calculate")
            n = len(self.atoms)
            if self.mode == "slow":
                time.sleep(0.02)
            energy = {"nan": float("nan"), "deep": -100.0 * n}.get(self.mode, 0.0)
            forces = np.full((n, 3), np.nan) if self.mode == "nan_forces" else np.zeros((n, 3))
            if self.mode == "slow":
                forces[:, 0] = 1.0  # a steady push: never converges, never breaks
            if self.mode == "collapse":  # atoms 0 and 1 pulled onto each other
                d = self.atoms.positions[1] - self.atoms.positions[0]
                forces[0] = 5.0 * d / np.linalg.norm(d)
                forces[1] = -forces[0]
            stress = np.zeros(6)
            if self.mode == "expand":
                stress[:3] = -0.5  # eV/Å^3 of pressure: the cell keeps growing
            self.results = {"energy": energy, "forces": forces, "stress": stress}


    def make_emt():
        return EMT()


    def make_scripted(mode="ok"):
        return Scripted(mode)


    def not_a_calculator():
        return object()
    '''
)
HELPERS = "simtest_helper_calcs"


@pytest.fixture(scope="module", autouse=True)
def helper_module(tmp_path_factory):
    directory = tmp_path_factory.mktemp("helpers")
    (directory / f"{HELPERS}.py").write_text(HELPER_MODULE)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(directory))
        yield


def fcc(a: float, species=("Cu", "Cu", "Cu", "Cu")) -> Structure:
    return Structure(Lattice.cubic(a), list(species), FCC)


def scripted(mode: str, **settings) -> Simulator:
    return Simulator(f"{HELPERS}:make_scripted", RelaxSettings(**settings), options={"mode": mode})


# --- EMT -------------------------------------------------------------------------------


def test_emt_relaxes_fcc_cu_to_its_lattice_parameter():
    result = Simulator("emt", TIGHT).relax(fcc(3.7))
    assert result.ok and result.converged and result.error is None
    assert result.simulator == "emt"
    assert 0 < result.steps <= TIGHT.max_steps
    assert result.structure.lattice.abc == pytest.approx((3.58979,) * 3, rel=1e-3)
    assert result.energy_per_atom == pytest.approx(-0.0070365, abs=1e-4)
    assert result.energy == pytest.approx(4 * result.energy_per_atom)
    assert result.forces_max < 1e-3
    assert len(result.stress) == 6
    assert max(abs(s) for s in result.stress) < 0.05  # GPa: the cell really relaxed


@pytest.mark.parametrize("optimizer", ["FIRE", "BFGS"])
def test_emt_relaxes_l12_cu3au(optimizer):
    settings = RelaxSettings(fmax=1e-3, optimizer=optimizer)
    result = Simulator("emt", settings).relax(fcc(3.9, ("Au", "Cu", "Cu", "Cu")))
    assert result.ok and result.converged
    assert result.energy_per_atom == pytest.approx(-0.015499, abs=1e-4)
    assert result.structure.lattice.a == pytest.approx(3.7081, rel=1e-3)
    assert result.structure.composition.reduced_formula == "Cu3Au"


def test_single_point_does_not_move_atoms():
    structure = fcc(3.9, ("Au", "Cu", "Cu", "Cu"))
    result = Simulator("emt").single_point(structure)
    assert result.ok and result.converged
    assert result.steps == 0
    assert result.structure.lattice.a == pytest.approx(3.9)
    # Strained well past equilibrium: higher energy than relaxed, and under tension.
    assert result.energy_per_atom == pytest.approx(0.099607, abs=1e-4)
    assert result.stress[0] == pytest.approx(15.13, rel=1e-3)


def test_single_point_many_is_single_points_in_order():
    structures = [fcc(a, ("Au", "Cu", "Cu", "Cu")) for a in (3.7, 3.9)] + [fcc(0.5, ("Cu",) * 4)]
    sim = Simulator("emt")
    many = list(sim.single_point_many(structures))
    assert [r.energy for r in many[:2]] == [sim.single_point(s).energy for s in structures[:2]]
    assert not many[2].ok and "closer than" in many[2].error  # a failure, not an exception


def test_fixed_cell_relaxation_keeps_the_cell():
    structure = fcc(3.8)
    structure.translate_sites([0], [0.02, 0.0, 0.0])
    result = Simulator("emt", RelaxSettings(relax_cell=False, fmax=1e-3)).relax(structure)
    assert result.ok and result.converged
    assert result.structure.lattice.a == pytest.approx(3.8)
    assert result.forces_max < 1e-3


def test_non_converged_relaxation_is_still_ok():
    result = Simulator("emt", RelaxSettings(max_steps=1)).relax(fcc(3.9))
    assert result.ok
    assert not result.converged
    assert result.steps <= 1
    assert result.energy is not None


def test_atoms_too_close_is_a_failed_result():
    structure = Structure(
        Lattice.cubic(10.0), ["Cu", "Cu"], [[0, 0, 0], [0.1, 0, 0]], coords_are_cartesian=True
    )
    result = Simulator("emt").relax(structure)
    assert not result.ok
    assert "closer than" in result.error and "0.100" in result.error
    assert result.energy is None and result.structure is None
    assert result.steps == 0


def test_pair_distances_match_ase_with_periodic_images():
    from ase.neighborlist import neighbor_list

    rng = np.random.default_rng(3)
    cells = [
        Atoms("Cu", cell=[0.45, 3.0, 3.0], pbc=True),  # an atom's own image 0.45 Å away
        Atoms("Cu2", positions=[[0, 0, 0], [0.2, 0.1, 0]], cell=[4, 4, 4], pbc=True),
    ]
    for n in (3, 8, 17):  # dense random triclinic cells: many pairs below the cutoff
        cell = np.diag(rng.uniform(2.0, 3.0, 3)) + rng.uniform(-0.8, 0.8, (3, 3))
        cells.append(Atoms(f"Si{n}", scaled_positions=rng.random((n, 3)), cell=cell, pbc=True))
    for atoms in cells:
        for cutoff in (0.5, 2.0):
            expected = np.sort(neighbor_list("d", atoms, cutoff=cutoff))
            assert np.allclose(np.sort(_pair_distances(atoms, cutoff)), expected)
    assert "0.450" in too_close(cells[0], 0.5)
    assert too_close(Atoms("Cu", cell=[2.5, 2.5, 2.5], pbc=True), 0.5) is None


@pytest.mark.parametrize("mask", [None, [1, 1, 1, 0, 0, 0]])
def test_fast_frechet_filter_matches_ase_along_a_relaxation(mask):
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.filters import FrechetCellFilter

    from simulators.cell_filter import FastFrechetCellFilter

    rng = np.random.default_rng(0)
    atoms = bulk("Cu", "fcc", a=3.7).repeat((2, 1, 1))
    atoms.rattle(0.05, seed=1)
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + rng.uniform(-0.04, 0.04, (3, 3))), True)
    twin = atoms.copy()
    atoms.calc, twin.calc = EMT(), EMT()
    stock, fast = FrechetCellFilter(atoms, mask=mask), FastFrechetCellFilter(twin, mask=mask)
    start = atoms.cell.array.copy()
    for _ in range(6):
        x, forces = stock.get_positions(), stock.get_forces()
        assert fast.get_positions() == pytest.approx(x, abs=1e-12)
        assert fast.get_forces() == pytest.approx(forces, abs=1e-12)
        assert fast.stress == pytest.approx(stock.stress, abs=1e-12)
        # The same step on both: cells and positions must stay together.
        stock.set_positions(x + 0.05 * forces)
        fast.set_positions(x + 0.05 * forces)
        assert twin.cell.array == pytest.approx(atoms.cell.array, abs=1e-12)
        assert twin.positions == pytest.approx(atoms.positions, abs=1e-12)
    assert np.abs(atoms.cell.array - start).max() > 1e-3  # the cell did relax


def test_disordered_structure_is_a_failed_result():
    structure = Structure(Lattice.cubic(3.7), [{"Cu": 0.5, "Au": 0.5}] * 4, FCC)
    result = Simulator("emt").relax(structure)
    assert not result.ok
    assert "disordered" in result.error
    assert not result.converged


def test_relax_structure_function_with_explicit_calculator():
    result = relax_structure(fcc(3.7), make_calculator("emt"), TIGHT)
    assert result.simulator == "custom"
    assert result.energy_per_atom == pytest.approx(-0.0070365, abs=1e-4)


def test_relax_many_yields_in_order():
    structures = [fcc(3.7), fcc(3.9, ("Au", "Cu", "Cu", "Cu")), fcc(3.6)]
    results = Simulator("emt", TIGHT).relax_many(structures)
    assert not isinstance(results, list)  # a generator, so callers can commit as they go
    formulas = [r.structure.composition.reduced_formula for r in results]
    assert formulas == ["Cu", "Cu3Au", "Cu"]


# --- custom calculators via import path --------------------------------------------------


def test_import_path_factory():
    result = Simulator(f"{HELPERS}:make_emt", TIGHT).relax(fcc(3.7))
    assert result.simulator == f"{HELPERS}:make_emt"
    assert result.energy_per_atom == pytest.approx(-0.0070365, abs=1e-4)


def test_raising_calculator_never_propagates():
    result = scripted("raise").relax(fcc(3.7))
    assert not result.ok
    assert result.error == "RuntimeError: scripted failure in calculate"
    assert result.wall_s >= 0


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("nan", "nan energy"), ("nan_forces", "nan forces"), ("deep", "below floor")],
)
def test_nonsense_numbers_are_failures(mode, reason):
    for result in (scripted(mode).relax(fcc(3.7)), scripted(mode).single_point(fcc(3.7))):
        assert not result.ok
        assert reason in result.error
        assert result.energy is None


def test_volume_blow_up_stops_the_relaxation():
    result = scripted("expand", max_volume_ratio=2.0).relax(fcc(3.7))
    assert not result.ok
    assert result.error.startswith("volume changed")
    assert 0 < result.steps < RelaxSettings().max_steps  # stopped early, not at max_steps
    assert result.structure is not None  # last geometry kept for post-mortems
    assert result.structure.volume > 2.0 * 3.7**3


def test_factory_not_returning_a_calculator_is_rejected():
    with pytest.raises(TypeError, match="not an ASE calculator"):
        make_calculator(f"{HELPERS}:not_a_calculator")


def test_unimportable_path_is_rejected():
    with pytest.raises(ValueError, match="cannot import"):
        make_calculator("no_such_module_xyz:factory")


# --- names and records -----------------------------------------------------------------


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="'emt', 'chgnet', 'sevennet'"):
        make_calculator("vasp")
    with pytest.raises(ValueError, match="valid names"):
        Simulator("vasp")
    assert available_simulators() == ["emt", "chgnet", "sevennet", "gpaw"]


def test_elements_supported():
    assert {"Cu", "Au", "Al", "Pt"} <= elements_supported("emt")
    assert "Fe" not in elements_supported("emt")
    # CHGNet: one slot per Z = 1..94; SevenNet-0: its checkpoint's 89 species.
    assert len(elements_supported("chgnet")) == 94 and "Pu" in elements_supported("chgnet")
    assert len(elements_supported("sevennet")) == 89 and "Po" not in elements_supported("sevennet")
    assert elements_supported(f"{HELPERS}:make_emt") is None


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="optimizer"):
        RelaxSettings(optimizer="LBFGS")


def test_result_roundtrips_through_json():
    ok = Simulator("emt").relax(fcc(3.7))
    failed = scripted("raise").relax(fcc(3.7))
    for result in (ok, failed):
        again = RelaxResult.from_dict(json.loads(json.dumps(result.to_dict())))
        assert again == result
        assert again.ok == result.ok
    assert isinstance(RelaxResult.from_dict(ok.to_dict()).stress, tuple)


# --- CHGNet ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chgnet() -> Simulator:
    return Simulator("chgnet")


def rock_salt_mno(a: float = 4.6) -> Structure:
    conventional = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), ["Mn", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    return conventional.get_primitive_structure()


def test_chgnet_relaxes_rock_salt_mno(chgnet):
    result = chgnet.relax(rock_salt_mno())
    assert result.ok and result.converged, result.error
    assert result.simulator == "chgnet"
    assert result.energy_per_atom == pytest.approx(MNO_ENERGY_PER_ATOM, rel=1e-3)
    assert result.forces_max < RelaxSettings().fmax


@pytest.mark.skipif(not LIMNO2_CIF.exists(), reason="shared LiMnO2 structure not present")
def test_chgnet_relaxes_limno2(chgnet):
    result = chgnet.relax(Structure.from_file(LIMNO2_CIF))
    assert result.ok and result.converged, result.error
    assert result.energy_per_atom == pytest.approx(LIMNO2_ENERGY_PER_ATOM, rel=1e-3)


def test_chgnet_calculator_reuse_does_not_leak(chgnet):
    a, b = rock_salt_mno(4.5), fcc(3.7)
    first = chgnet.relax(a)
    other = chgnet.relax(b)
    again = chgnet.relax(a)
    assert chgnet.calculator is chgnet.calculator
    assert first.ok and other.ok and again.ok
    assert other.energy_per_atom != pytest.approx(first.energy_per_atom, rel=1e-2)
    assert again.energy == pytest.approx(first.energy, rel=1e-6)
    assert again.steps == first.steps
    assert again.stress == pytest.approx(first.stress, rel=1e-5, abs=1e-6)
    assert chgnet.single_point(a).energy == pytest.approx(first_point_energy(chgnet, a))


def first_point_energy(simulator: Simulator, structure: Structure) -> float:
    """Energy from a calculator nobody else has touched, as the leak-free reference."""
    fresh = Simulator(simulator.name, simulator.settings, simulator.device)
    return fresh.single_point(structure).energy


def test_chgnet_model_is_loaded_once():
    first = make_calculator("chgnet")
    second = make_calculator("chgnet")
    assert first is not second
    assert first.model is second.model


# --- hardening: wall-time limit, starting moments ----------------------------------------


def test_wall_time_limit_is_a_failed_result():
    result = scripted("slow", max_seconds=0.2).relax(fcc(3.7))
    assert not result.ok and not result.converged
    assert "wall-time limit" in result.error
    assert 0 < result.steps < 100  # stopped by the clock, not by max_steps
    assert result.wall_s == pytest.approx(0.2, abs=0.5)
    assert result.structure is not None  # last geometry kept


def test_no_wall_time_limit_by_default():
    assert out_of_time(1e9, None) is None
    assert "wall-time limit" in out_of_time(2.0, 1.0)
    with pytest.raises(ValueError, match="max_seconds"):
        RelaxSettings(max_seconds=0)


def test_collapse_during_relaxation_is_a_failed_result():
    result = scripted("collapse", relax_cell=False).relax(fcc(3.7))
    assert not result.ok
    assert "closer than 0.5" in result.error
    assert result.steps > 0  # it started sane and collapsed on the way
    assert result.structure is not None


def rock_salt(a: float, species) -> Structure:
    conventional = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), list(species), [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    return conventional.get_primitive_structure()


def test_magnetic_elements_start_spin_polarised():
    sim = scripted("ok")
    result = sim.relax(rock_salt(4.45, ["Mn", "O"]))
    assert result.ok
    seen = dict(
        zip(
            sim.calculator.atoms.get_chemical_symbols(),
            sim.calculator.atoms.get_initial_magnetic_moments(),
            strict=True,
        )
    )
    assert seen == {"Mn": 5.0, "O": 0.0}
    assert "magmom" not in result.structure.site_properties  # a plain geometry comes back


def test_spin_polarisation_can_be_switched_off_and_skips_non_magnetic():
    off = Simulator(f"{HELPERS}:make_scripted", RelaxSettings(spin_polarized=False))
    off.relax(rock_salt(4.45, ["Mn", "O"]))
    assert not off.calculator.atoms.get_initial_magnetic_moments().any()
    from pymatgen.io.ase import AseAtomsAdaptor

    cu = AseAtomsAdaptor.get_atoms(fcc(3.6))
    assert not set_initial_moments(cu) and not cu.has("initial_magmoms")


def test_moments_already_on_the_structure_are_kept():
    structure = rock_salt(4.45, ["Mn", "O"])
    structure.add_site_property("magmom", [3.0, 0.0])
    sim = scripted("ok")
    sim.relax(structure)
    assert list(sim.calculator.atoms.get_initial_magnetic_moments()) == [3.0, 0.0]


# --- SevenNet-0 --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sevennet() -> Simulator:
    return Simulator("sevennet", TIGHT)


def diamond_si(a: float = 5.43) -> Structure:
    conventional = Structure.from_spacegroup("Fd-3m", Lattice.cubic(a), ["Si"], [[0, 0, 0]])
    return conventional.get_primitive_structure()


def test_sevennet_relaxes_si(sevennet):
    result = sevennet.relax(diamond_si())
    assert result.ok and result.converged, result.error
    assert result.simulator == "sevennet"
    assert result.energy_per_atom == pytest.approx(SEVENNET_SI_ENERGY_PER_ATOM, abs=1e-3)
    # SevenNet-0 (PBE-trained) overestimates Si's 5.43 Å a little, as PBE does.
    assert result.structure.lattice.a * 2**0.5 == pytest.approx(5.463, abs=0.01)


def test_sevennet_relaxes_nacl(sevennet):
    result = sevennet.relax(rock_salt(5.64, ["Na", "Cl"]))
    assert result.ok and result.converged, result.error
    assert result.energy_per_atom == pytest.approx(SEVENNET_NACL_ENERGY_PER_ATOM, abs=1e-3)


def test_sevennet_model_is_loaded_once():
    first = make_calculator("sevennet")
    second = make_calculator("sevennet")
    assert first is not second
    assert first.model is second.model


@pytest.mark.parametrize(
    "structure, energy, conventional_a",
    [
        (diamond_si(), CHGNET_SI_ENERGY_PER_ATOM, 5.461),
        (rock_salt(5.64, ["Na", "Cl"]), CHGNET_NACL_ENERGY_PER_ATOM, 5.697),
    ],
    ids=["Si", "NaCl"],
)
def test_chgnet_relaxes_si_and_nacl(structure, energy, conventional_a):
    result = Simulator("chgnet", TIGHT).relax(structure)
    assert result.ok and result.converged, result.error
    assert result.energy_per_atom == pytest.approx(energy, abs=1e-3)
    # PBE-like lattice constants (experiment: Si 5.431 Å, NaCl 5.640 Å)
    assert result.structure.lattice.a * 2**0.5 == pytest.approx(conventional_a, abs=0.01)
