"""The DFT tier: GPAW (PBE, plane waves) in a child process under a hard wall-time limit.

Runs whenever GPAW is importable (CI installs the [dft] extra); small cells and, where a
test is about mechanics rather than accuracy, low cut-offs and k-point grids.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from simulators import (
    GpawOptions,
    RelaxSettings,
    Simulator,
    dft_subprocess,
    elements_supported,
    make_calculator,
)
from simulators.outcome import prepare_atoms

gpaw = pytest.importorskip("gpaw", reason="GPAW is not installed (pip install -e '.[dft]')")

pytestmark = pytest.mark.dft

# GPAW 26.7.0, gpaw-data 1.2.1, PBE at the defaults (500 eV, 4.0 k-points per Å⁻¹ -> 9x9x9
# Γ-centred, Fermi-Dirac 0.05 eV), diamond Si at a = 5.43 Å. GPAW counts energies from its
# setups' spherical, spin-paired atoms, so this is minus a cohesive energy; VASP's zero
# differs (MP's PBE mp-149 is -5.425 eV/atom), so only energy differences compare across
# codes. Literature check: PBE's cohesive energy of Si is 4.55 eV/atom against the
# spin-polarised atom (Haas, Tran & Blaha, PRB 79, 085104, 2009); the spin-paired spherical
# atom lies higher by the atom's spin-polarisation energy, so 5.40 here is of the right size
# and larger, as it must be. The relaxation test checks PBE's lattice constant (5.47 Å).
SI_ENERGY_PER_ATOM = -5.39531
SI_TOL = 1e-3  # eV/atom
# Mechanics, not accuracy: cheap enough for a relaxation in seconds.
CHEAP = {"ecut": 300.0, "kpt_density": 2.5}


def diamond_si(a: float = 5.43) -> Structure:
    return Structure(Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]]),
                     ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]])  # fmt: skip


def test_si_energy_pinned():
    result = Simulator("gpaw").single_point(diamond_si())
    assert result.ok, result.error
    assert result.energy_per_atom == pytest.approx(SI_ENERGY_PER_ATOM, abs=SI_TOL)
    # Compressed relative to PBE's 5.47 Å: the cell wants to grow (ASE: negative stress).
    assert max(result.stress[:3]) < 0


def test_si_relaxes_towards_pbe_lattice_constant():
    start = diamond_si(5.33)
    settings = RelaxSettings(optimizer="BFGS", fmax=0.01)
    result = Simulator("gpaw", settings, options=CHEAP).relax(start)
    assert result.ok and result.converged, result.error
    a = result.structure.lattice.a * 2**0.5  # primitive fcc vector -> cubic lattice constant
    assert 5.44 < a < 5.51, a
    assert result.steps >= 1


def test_wall_time_limit_kills_the_child(monkeypatch):
    started: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        proc = real_popen(*args, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(dft_subprocess.subprocess, "Popen", recording_popen)
    # A 16-atom cell at the default settings takes far longer than the limit.
    big = diamond_si()
    big.make_supercell([2, 2, 2])
    result = Simulator("gpaw", RelaxSettings(max_seconds=1.0)).relax(big)
    assert not result.ok
    assert result.error.startswith("wall-time limit (1 s) exceeded")
    assert 1.0 <= result.wall_s < 10
    (proc,) = started
    assert proc.returncode == -signal.SIGKILL  # killed, and reaped by wait(): no zombie
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # nothing of its session is left


def test_scf_failure_is_a_failed_result():
    # Two SCF iterations cannot converge: GPAW raises in the child, the result says why.
    result = Simulator("gpaw", options={**CHEAP, "maxiter": 2}).single_point(diamond_si())
    assert not result.ok
    assert "KohnShamConvergenceError" in result.error


def test_child_crash_is_a_failed_result(monkeypatch):
    monkeypatch.setattr(
        dft_subprocess,
        "worker_command",
        lambda job, out: [
            sys.executable,
            "-c",
            "import os, sys; sys.stderr.write('boom\\n'); os.abort()",
        ],
    )
    result = Simulator("gpaw", options=CHEAP).relax(diamond_si())
    assert not result.ok
    assert "killed by SIGABRT" in result.error and "boom" in result.error


def test_bad_options_fail_at_construction():
    with pytest.raises(ValueError, match="unknown GPAW option"):
        Simulator("gpaw", options={"encut": 520})
    with pytest.raises(ValueError, match="ecut must be positive"):
        Simulator("gpaw", options={"ecut": -1})
    assert GpawOptions.from_options({"kpts": [1, 1, 1]}).kpts == (1, 1, 1)


@pytest.mark.parametrize(
    ("element", "lattice", "coords", "min_moment"),
    [
        ("Fe", Lattice.cubic(2.83), [[0, 0, 0], [0.5, 0.5, 0.5]], 1.5),
        ("Ni", Lattice.cubic(3.52), [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]], 0.4),
    ],
)
def test_spin_polarised_for_magnetic_metals(element, lattice, coords, min_moment):
    structure = Structure(lattice, [element] * len(coords), coords).get_primitive_structure()
    atoms = prepare_atoms(structure, RelaxSettings())
    atoms.calc = make_calculator("gpaw", ecut=250, kpts=(4, 4, 4), smearing=0.1)
    atoms.get_potential_energy()
    assert atoms.calc.get_number_of_spins() == 2
    assert atoms.get_magnetic_moment() > min_moment  # PBE: Fe ~2.2, Ni ~0.6 µB/atom


def test_elements_supported():
    elements = elements_supported("gpaw")
    assert {"Si", "O", "Fe", "Cl", "Au"} <= elements


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    # A killed orphan may stay a zombie until PID 1 reaps it (not every container's PID 1
    # does): it runs nothing, so it counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_child_dies_with_its_parent():
    # A campaign killed mid-relaxation must not leave GPAW running for up to its limit.
    script = (
        "from pymatgen.core import Lattice, Structure\n"
        "from simulators import Simulator\n"
        "s = Structure(Lattice.cubic(5.43), ['Si'] * 8, [[0, 0, 0], [0, .5, .5], [.5, 0, .5],"
        " [.5, .5, 0], [.25, .25, .25], [.25, .75, .75], [.75, .25, .75], [.75, .75, .25]])\n"
        "Simulator('gpaw').relax(s)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not (children := _children(parent.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert children, "the worker never started"
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while any(map(_running, children)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_running, children))
