"""The simulator back-end registry: the built-ins as plain data (listing them imports no torch),
unknown names, and a new back-end added by one ``register`` call that the config, the
calculators, batching, the child process of a subprocess back-end and ``Simulator`` all honour."""

from __future__ import annotations

import ast
import json
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
from ase.calculators.emt import EMT
from conftest import REPO, toy_config
from pymatgen.core import Lattice, Structure

from discovery.config import ConfigError, parse_config
from discovery.engine.executors import SimulatorSpec
from simulators import (
    PerStructureBatch,
    RelaxSettings,
    Simulator,
    available_simulators,
    elements_supported,
    make_calculator,
)
from simulators.registry import (
    Backend,
    backend_names,
    get_backend,
    register,
    unregister,
)

pytestmark = pytest.mark.usefixtures("single_thread")

TOY_MODULE = "toy_backend_calcs"
# A whole new potential: a calculator factory (and, for the batched variant, a batched form)
# in a module of its own. Nothing in simulators/ or discovery/ names it.
TOY_SOURCE = """
from ase.calculators.emt import EMT

from simulators.batch_models import PerStructureBatch


def make(device, **options):
    return EMT(**options)


def batch(device="cpu", model_name=None):
    return PerStructureBatch(EMT(), "toy-batched")
"""
TOY_ELEMENTS = frozenset({"Cu", "Au", "Pd"})


def fcc(a: float, species=("Cu",) * 4) -> Structure:
    coords = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
    return Structure(Lattice.cubic(a), list(species), coords)


@pytest.fixture
def toy_module(tmp_path, monkeypatch):
    (tmp_path / f"{TOY_MODULE}.py").write_text(TOY_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    # The child process of a subprocess back-end imports it too.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    )
    yield TOY_MODULE
    sys.modules.pop(TOY_MODULE, None)


@pytest.fixture
def toy(toy_module):
    """The one line a new potential needs."""
    backend = register(Backend(name="toy", factory=f"{toy_module}:make", elements=TOY_ELEMENTS))
    yield backend
    unregister("toy")


def with_simulator(**simulator) -> dict:
    data = toy_config()
    data["simulator"] = {**data.get("simulator", {}), **simulator}
    return data


# --- the built-ins ------------------------------------------------------------------------


def test_listing_the_backends_imports_no_potential():
    code = textwrap.dedent(
        """
        import json, sys
        import simulators.registry as registry
        rows = [registry.get_backend(n) for n in registry.backend_names()]
        print(json.dumps({
            "names": [b.name for b in rows],
            "heavy": sorted(m for m in ("torch", "chgnet", "sevenn", "gpaw", "ase")
                            if m in sys.modules),
        }))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    answer = json.loads(out.stdout)
    assert answer == {"names": ["emt", "chgnet", "sevennet", "gpaw"], "heavy": []}


def test_loading_a_config_imports_no_torch():
    code = (
        "import sys; from discovery.config import load_config; "
        f"load_config({str(REPO / 'campaigns' / 'quickstart.yaml')!r}); "
        "print('torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_builtin_backends_say_what_they_are():
    assert backend_names() == available_simulators() == ["emt", "chgnet", "sevennet", "gpaw"]
    assert [n for n in backend_names() if get_backend(n).can_batch] == ["chgnet", "sevennet"]
    assert [n for n in backend_names() if get_backend(n).mp_compatible] == ["chgnet", "sevennet"]
    gpaw = get_backend("gpaw")
    assert gpaw.subprocess and gpaw.max_seconds == 1800 and gpaw.extra == "dft"
    assert get_backend("emt").elements >= {"Cu", "Au", "Al", "Pt"}


def test_unknown_name_lists_the_registered_ones():
    with pytest.raises(ValueError, match="unknown simulator 'vasp'; valid names: 'emt', 'chgnet'"):
        get_backend("vasp")
    with pytest.raises(ValueError, match="valid names"):
        Simulator("vasp")


def test_an_import_path_is_a_default_backend():
    backend = get_backend("ase.calculators.emt:EMT")
    assert backend.factory == "ase.calculators.emt:EMT" and not backend.takes_device
    assert not backend.can_batch and not backend.subprocess and backend.elements is None


def test_a_taken_name_is_not_silently_replaced():
    with pytest.raises(ValueError, match="already registered"):
        register(Backend(name="emt", factory="ase.calculators.emt:EMT"))
    with pytest.raises(ValueError, match="not 'module:attr'"):
        Backend(name="x", factory="no colon here")


def test_simulators_never_import_discovery():
    for path in (REPO / "simulators").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "discovery" for n in names), path


# --- a new back-end is one entry ----------------------------------------------------------


def test_a_registered_backend_is_a_simulator_everywhere(toy):
    assert "toy" in available_simulators()
    assert isinstance(make_calculator("toy"), EMT)
    assert elements_supported("toy") == set(TOY_ELEMENTS)
    result = Simulator("toy", RelaxSettings(fmax=1e-3)).relax(fcc(3.7))
    reference = Simulator("emt", RelaxSettings(fmax=1e-3)).relax(fcc(3.7))
    assert result.ok and result.simulator == "toy"
    assert result.energy_per_atom == pytest.approx(reference.energy_per_atom, abs=1e-6)


def test_the_config_accepts_a_registered_backend(toy):
    config = parse_config(with_simulator(name="toy"))
    assert config.simulator.name == "toy"
    ladder = parse_config({**toy_config(), "fidelities": ["emt", "toy"]})
    assert [r.name for r in ladder.ladder] == ["emt", "toy"]


def test_the_config_honours_its_elements(toy):
    data = {**with_simulator(name="toy"), "chemical_systems": ["Cu-Au", "Na-Cl"]}
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    message = str(err.value)
    assert message.startswith("invalid value for 'simulator': 'simulator.name' 'toy' has no ")
    assert "parameters for Cl, Na (from 'chemical_systems'); it supports Au, Cu, Pd" in message
    with pytest.raises(ConfigError, match="'fidelities.1.name' 'toy' has no parameters for Ag"):
        parse_config({**toy_config(), "chemical_systems": ["Cu-Ag"], "fidelities": ["emt", "toy"]})


def test_builtin_elements_are_checked_at_load():
    with pytest.raises(ConfigError, match="'emt' has no parameters for Cl, Na"):
        parse_config({**with_simulator(name="emt"), "chemical_systems": ["Na-Cl"]})
    # GPAW's elements are the setups installed, looked up at run time, not at load.
    parse_config({"name": "x", "chemical_systems": ["Na-Cl"], "fidelities": ["chgnet", "gpaw"]})


def test_the_config_honours_mp_compatibility(toy):
    with pytest.raises(ConfigError, match="mp2020 is for potentials trained on MP data, not 'toy'"):
        parse_config(with_simulator(name="toy", formation_energy="mp2020"))
    register(Backend(name="toy", factory=toy.factory, mp_compatible=True), replace=True)
    assert parse_config(with_simulator(name="toy", formation_energy="mp2020"))


def test_a_batched_form_is_one_more_field(toy, toy_module):
    with pytest.raises(ConfigError, match="batched: true needs 'chgnet' or 'sevennet', not 'toy'"):
        parse_config(with_simulator(name="toy", batched=True))
    register(
        Backend(name="toy", factory=toy.factory, batch_factory=f"{toy_module}:batch"), replace=True
    )
    assert parse_config(with_simulator(name="toy", batched=True)).simulator.batched
    sim = Simulator("toy", RelaxSettings(fmax=1e-2))
    assert sim.can_batch and isinstance(sim.batch_model, PerStructureBatch)
    results = list(sim.relax_many([fcc(3.7), fcc(3.6)], batched=True, batch_size=2))
    assert [r.ok for r in results] == [True, True]


def test_a_subprocess_backend_runs_in_a_child_that_learns_it_from_the_job(toy):
    register(
        Backend(name="toy", factory=toy.factory, subprocess=True, max_seconds=120), replace=True
    )
    sim = Simulator("toy", RelaxSettings(fmax=1e-2))
    assert sim.in_subprocess
    result = sim.relax(fcc(3.7))  # the child never ran register(): the job carries the entry
    assert result.ok and result.simulator == "toy", result.error


def test_a_spec_carries_its_backend_to_a_fresh_process(toy):
    spec = SimulatorSpec("toy", RelaxSettings(), backend=toy)
    unregister("toy")  # as in a spawned pool worker, which never ran register()
    rebuilt = pickle.loads(pickle.dumps(spec)).build()
    assert rebuilt.backend == toy and get_backend("toy") == toy
