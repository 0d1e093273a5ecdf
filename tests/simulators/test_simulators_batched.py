"""Batched relaxation: same answers as one at a time, failures as results, the stream order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from pymatgen.core import Lattice, Structure

from simulators import (
    Evaluation,
    PerStructureBatch,
    RelaxSettings,
    Simulator,
    make_batch_model,
    relax_batched,
)

FCC = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]


@pytest.fixture(scope="module", autouse=True)
def one_thread_each():
    # Two cores shared with other work: one torch thread, and one BLAS thread, because
    # OpenBLAS threads spinning against a loaded machine made FrechetCellFilter's small
    # matrix exponentials many times slower.
    from threadpoolctl import threadpool_limits

    limits = threadpool_limits(1)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
    limits.restore_original_limits()


def fcc(a: float, species=("Cu", "Cu", "Cu", "Cu")) -> Structure:
    return Structure(Lattice.cubic(a), list(species), FCC)


def rattled(structure: Structure, seed: int, amount: float = 0.05) -> Structure:
    rng = np.random.default_rng(seed)
    out = structure.copy()
    for i, d in enumerate(rng.normal(0, amount, (len(out), 3))):
        out.translate_sites([i], d, frac_coords=False)
    return out


def rock_salt(a: float, species) -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), list(species), [[0, 0, 0], [0.5, 0.5, 0.5]]
    ).get_primitive_structure()


def diamond(a: float, element: str) -> Structure:
    return Structure.from_spacegroup(
        "Fd-3m", Lattice.cubic(a), [element], [[0, 0, 0]]
    ).get_primitive_structure()


class Misbehaving(Calculator):
    """Unit-test stand-in: EMT, except for structures of one element, where it misbehaves."""

    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self, mode: str, element: str = "Au", **kwargs):
        super().__init__(**kwargs)
        self.mode, self.element, self.emt = mode, element, EMT()

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        work = self.atoms.copy()
        work.calc = self.emt
        energy, forces = work.get_potential_energy(), work.get_forces()
        stress = work.get_stress()
        if self.element in self.atoms.get_chemical_symbols():
            n = len(self.atoms)
            if self.mode == "raise":
                raise RuntimeError("scripted failure")
            if self.mode == "nan":
                energy = float("nan")
            if self.mode == "deep":
                energy = -100.0 * n
            if self.mode == "expand":
                stress = np.array([-0.5, -0.5, -0.5, 0, 0, 0])
                forces = np.zeros((n, 3))
        self.results = {"energy": energy, "forces": forces, "stress": stress}


EMT_SET = [
    rattled(fcc(3.7), 0),
    rattled(fcc(3.9, ("Au", "Cu", "Cu", "Cu")), 1),
    rattled(fcc(3.5), 2),
    rattled(fcc(4.1, ("Au", "Au", "Au", "Au")), 3),
    rattled(fcc(3.9, ("Pd", "Cu", "Pd", "Cu")), 4),
]


@pytest.mark.parametrize(("optimizer", "batch_size"), [("FIRE", 1), ("FIRE", 32), ("BFGS", 2)])
def test_batched_equals_sequential_with_emt(optimizer, batch_size):
    settings = RelaxSettings(fmax=1e-2, optimizer=optimizer)
    sequential = list(Simulator("emt", settings).relax_many(EMT_SET))
    model = PerStructureBatch(EMT(), "emt")
    pairs = list(relax_batched(EMT_SET, model, settings, "emt", batch_size))
    assert sorted(i for i, _ in pairs) == list(range(len(EMT_SET)))
    batched = dict(pairs)
    for i, seq in enumerate(sequential):
        bat = batched[i]
        assert seq.ok and bat.ok and seq.converged and bat.converged
        # Same optimizer, same filter, same physics: the same path, step for step.
        assert bat.steps == seq.steps
        assert bat.energy_per_atom == pytest.approx(seq.energy_per_atom, abs=1e-9)
        assert bat.structure.lattice.abc == pytest.approx(seq.structure.lattice.abc, abs=1e-8)


class ThreadSafeEMT:
    """EMT behind the batched interface with a calculator per call, so lanes may share it."""

    name = "emt"
    concurrent = True

    def evaluate(self, atoms):
        return PerStructureBatch(EMT(), "emt").evaluate(atoms)


@pytest.mark.parametrize("lanes", [2, 3])
def test_lanes_give_the_same_relaxations(lanes):
    settings = RelaxSettings(fmax=1e-2)
    sequential = list(Simulator("emt", settings).relax_many(EMT_SET))
    threads = torch.get_num_threads()
    pairs = list(relax_batched(EMT_SET, ThreadSafeEMT(), settings, "emt", 4, lanes=lanes))
    # Each lane runs on one intra-op thread; the caller's setting comes back afterwards.
    assert torch.get_num_threads() == threads
    assert sorted(i for i, _ in pairs) == list(range(len(EMT_SET)))
    for i, bat in pairs:
        seq = sequential[i]
        assert bat.ok and bat.converged and bat.steps == seq.steps
        assert bat.energy_per_atom == pytest.approx(seq.energy_per_atom, abs=1e-9)


def test_lanes_stop_when_the_consumer_does():
    import threading

    structures = EMT_SET * 4
    stream = relax_batched(structures, ThreadSafeEMT(), RelaxSettings(fmax=1e-2), "emt", 4, 2)
    first = next(stream)
    stream.close()  # joins the lanes
    assert first[1].ok
    assert not [t for t in threading.enumerate() if t.name.startswith("relax-lane")]
    with pytest.raises(ValueError, match="lanes"):
        list(relax_batched(EMT_SET, ThreadSafeEMT(), RelaxSettings(), "emt", 4, lanes=0))


def test_relax_many_batched_keeps_input_order_and_as_completed_does_not_wait():
    # EMT has no batched form of its own; PerStructureBatch gives it one (no speed-up).
    sim = Simulator("emt", RelaxSettings(fmax=1e-2), batch_model=PerStructureBatch(EMT()))
    formulas = [r.structure.composition.reduced_formula for r in _batched(sim, EMT_SET)]
    assert formulas == [s.composition.reduced_formula for s in EMT_SET]
    order = [i for i, _ in sim.relax_as_completed(EMT_SET, batched=True, batch_size=8)]
    steps = {i: r.steps for i, r in sim.relax_as_completed(EMT_SET, batched=True)}
    assert order == sorted(order, key=lambda i: (steps[i], i))  # quickest first


def _batched(sim, structures):
    return list(sim.relax_many(structures, batched=True, batch_size=2))


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("raise", "RuntimeError: scripted failure"),
        ("nan", "nan energy"),
        ("deep", "below floor"),
        ("expand", "volume changed"),
    ],
)
def test_one_bad_structure_fails_alone(mode, reason):
    settings = RelaxSettings(fmax=1e-2, max_volume_ratio=2.0)
    structures = [fcc(3.7), fcc(4.1, ("Au",) * 4), fcc(3.6)]
    model = PerStructureBatch(Misbehaving(mode), "misbehaving")
    results = dict(relax_batched(structures, model, settings, "misbehaving", 8))
    assert results[0].ok and results[2].ok
    assert not results[1].ok and reason in results[1].error
    assert results[1].energy is None


def test_batched_wall_time_limit_and_bad_inputs():
    slow = PerStructureBatch(EMT(), "emt")

    class Slow:
        name = "slow"

        def evaluate(self, atoms):
            import time

            time.sleep(0.05)
            # A steady push on every atom: never converges, never breaks.
            out = slow.evaluate(atoms)
            return [Evaluation(e.energy, np.ones_like(e.forces), e.stress) for e in out]

    structures = [
        fcc(3.7),
        Structure(Lattice.cubic(3.7), [{"Cu": 0.5, "Au": 0.5}] * 4, FCC),
        Structure(
            Lattice.cubic(9), ["Cu", "Cu"], [[0, 0, 0], [0.2, 0, 0]], coords_are_cartesian=True
        ),
    ]
    settings = RelaxSettings(max_seconds=0.3, relax_cell=False)
    results = dict(relax_batched(structures, Slow(), settings, "slow", 4))
    assert "wall-time limit" in results[0].error and results[0].steps > 0
    assert "disordered" in results[1].error
    assert "closer than" in results[2].error


def test_no_batched_form_is_refused():
    with pytest.raises(ValueError, match="no batched form"):
        list(Simulator("emt").relax_many([fcc(3.7)], batched=True))
    with pytest.raises(ValueError, match="no batched form"):
        make_batch_model("emt")
    with pytest.raises(ValueError, match="batch_size"):
        list(relax_batched([fcc(3.7)], PerStructureBatch(EMT()), RelaxSettings(), "emt", 0))


def test_evaluation_checks_its_shapes():
    with pytest.raises(ValueError, match="forces"):
        Evaluation(0.0, np.zeros(3), np.zeros(6))
    with pytest.raises(ValueError, match="stress"):
        Evaluation(0.0, np.zeros((2, 3)), np.zeros((3, 3)))


# --- the universal potentials: batched against one at a time, within 1 meV/atom ----------

SMALL = [
    rattled(diamond(5.5, "Si"), 10),
    rattled(rock_salt(5.7, ["Na", "Cl"]), 11),
    rattled(rock_salt(4.3, ["Mg", "O"]), 12),
]


@pytest.mark.parametrize("name", ["sevennet", "chgnet"])
def test_universal_potential_batched_agrees_with_sequential(name):
    sim = Simulator(name, RelaxSettings(fmax=0.02))
    sequential = list(sim.relax_many(SMALL))
    if getattr(sim.batch_model, "concurrent", False):
        # Two lanes even on one thread: the path a 2-core machine takes.
        pairs = dict(relax_batched(SMALL, sim.batch_model, sim.settings, name, 8, lanes=2))
        batched = [pairs[i] for i in range(len(SMALL))]
    else:
        batched = list(sim.relax_many(SMALL, batched=True, batch_size=8))
    for seq, bat in zip(sequential, batched, strict=True):
        assert seq.ok and bat.ok and seq.converged and bat.converged, (seq.error, bat.error)
        assert abs(seq.energy_per_atom - bat.energy_per_atom) < 1e-3  # eV/atom
        assert bat.forces_max < 0.02
        assert bat.stress == pytest.approx(seq.stress, abs=0.05)  # GPa


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["sevennet", "chgnet"])
def test_batched_relaxation_on_cuda_agrees_with_cpu(name):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    cpu = list(Simulator(name, RelaxSettings(fmax=0.02)).relax_many(SMALL))
    gpu = Simulator(name, RelaxSettings(fmax=0.02), device="cuda")
    # One big batch on a GPU, not one lane per CPU thread.
    assert not getattr(gpu.batch_model, "concurrent", False)
    for c, g in zip(cpu, gpu.relax_many(SMALL, batched=True, batch_size=8), strict=True):
        assert c.ok and g.ok and g.converged, (c.error, g.error)
        assert abs(c.energy_per_atom - g.energy_per_atom) < 1e-3  # eV/atom


def test_sevennet_batch_matches_its_calculator():
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = [AseAtomsAdaptor.get_atoms(s) for s in SMALL]
    evaluations = make_batch_model("sevennet").evaluate(atoms)
    calculator = Simulator("sevennet").calculator
    for a, ev in zip(atoms, evaluations, strict=True):
        a.calc = calculator
        assert ev.energy == pytest.approx(a.get_potential_energy(), abs=1e-4)
        assert ev.forces == pytest.approx(a.get_forces(), abs=1e-4)
        assert ev.stress == pytest.approx(a.get_stress(), abs=1e-5)


def test_weight_slice_rewrite_keeps_values_and_gradients():
    from e3nn import o3

    from simulators.tensor_product_split import split_weight_slices

    torch.manual_seed(0)
    irreps_in, irreps_sh = o3.Irreps("4x0e+2x1e+2x2e"), o3.Irreps("1x0e+1x1e+1x2e")
    instructions, irreps_out = [], []
    for i, (mul, ir_in) in enumerate(irreps_in):
        for j, (_, ir_sh) in enumerate(irreps_sh):
            for ir_out in ir_in * ir_sh:
                instructions.append((i, j, len(irreps_out), "uvu", True))
                irreps_out.append((mul, ir_out))

    def build():
        return o3.TensorProduct(
            irreps_in,
            irreps_sh,
            o3.Irreps(irreps_out),
            instructions,
            shared_weights=False,
            internal_weights=False,
        )

    plain, rewritten = build(), build()
    assert split_weight_slices(rewritten) > 0
    assert split_weight_slices(rewritten) == 0  # once per model
    x1 = torch.randn(7, irreps_in.dim, requires_grad=True)
    x2 = torch.randn(7, irreps_sh.dim, requires_grad=True)
    w = torch.randn(7, plain.weight_numel, requires_grad=True)
    a, b = plain(x1, x2, w), rewritten(x1, x2, w)
    assert torch.equal(a, b)
    g = torch.randn_like(a)
    for ga, gb in zip(
        torch.autograd.grad(a, [x1, x2, w], g), torch.autograd.grad(b, [x1, x2, w], g), strict=True
    ):
        assert torch.allclose(ga, gb, atol=1e-6)
