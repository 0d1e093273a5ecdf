"""Run one relaxation or single point in a child process under a hard wall-time limit.

Why a child process at all: ``RelaxSettings.max_seconds`` is checked between optimizer
steps, and one DFT step (an SCF cycle that sloshes, a library stuck in a loop) can outlast
any budget; a crash in compiled code (BLAS, FFTW, libxc) would take the campaign with it.
A child can be killed at the limit and can die alone.

Why ``python -m simulators.dft_worker`` rather than ``multiprocessing``: the parent usually
has torch (and its OpenMP threads) loaded, so forking is unsafe, and 'spawn'/'forkserver'
re-import the parent's ``__main__`` in the child, which breaks scripts without a
``if __name__ == "__main__"`` guard and drags torch into every DFT child for nothing. A
plain interpreter started with ``subprocess`` imports only what the job needs, talks through
two small JSON files (GPAW's own output stays out of any pipe), runs in its own session so
the kill reaches everything it started, and is reaped with ``wait()`` so no zombie is left.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from pymatgen.core import Structure

import simulators
from simulators.dft_worker import PARENT_PID_VARIABLE, Job
from simulators.outcome import Insane, failed_result
from simulators.records import RelaxResult
from simulators.registry import Backend
from simulators.sanity import out_of_time
from simulators.settings import RelaxSettings

logger = logging.getLogger(__name__)

_STDERR_TAIL_CHARS = 200

# Small cells gain nothing from BLAS threads, and two children on a shared machine would
# oversubscribe it; a user who wants threads sets these variables in the environment.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class ChildProcessFailed(Exception):
    """The child exited without a result: a crash, a signal or an error before the run."""


def run_in_subprocess(
    structure: Structure,
    simulator: str,
    settings: RelaxSettings,
    options: dict[str, Any] | None = None,
    relax: bool = True,
    default_max_seconds: float | None = None,
    backend: Backend | None = None,
) -> RelaxResult:
    """Relax (or single-point) ``structure`` in a fresh interpreter; never raises for failures.

    The limit is ``settings.max_seconds``, or ``default_max_seconds`` when that is None
    (None for both: no limit). Past it the child is killed (SIGKILL to its process group)
    and the result is failed with the same 'wall-time limit' reason as the in-process path.
    The result's ``wall_s`` counts the child's start-up too. ``backend`` travels with the
    job so that the child knows a back-end registered at run time in this process.
    """
    limit = settings.max_seconds if settings.max_seconds is not None else default_max_seconds
    job = Job(simulator, dict(options or {}), settings, structure, relax, limit, backend)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dft-") as tmp:
        directory = Path(tmp)
        job_path, result_path = directory / "job.json", directory / "result.json"
        stderr_path = directory / "stderr.txt"
        job_path.write_text(json.dumps(job.to_dict()))
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen(
                worker_command(job_path, result_path),
                cwd=directory,  # anything GPAW writes lands in the temporary directory
                env=_child_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
            try:
                returncode = proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                _kill(proc)
                elapsed = time.perf_counter() - t0
                reason = out_of_time(elapsed, limit) or f"wall-time limit ({limit:g} s) exceeded"
                logger.info("%s child killed: %s", simulator, reason)
                return failed_result(structure, Insane(reason), simulator, None, 0, t0)
            finally:
                # KeyboardInterrupt or any other surprise: never leave the child running.
                if proc.poll() is None:
                    _kill(proc)
        if returncode == 0 and result_path.is_file():
            result = RelaxResult.from_dict(json.loads(result_path.read_text()))
            return replace(result, wall_s=time.perf_counter() - t0)
        error = ChildProcessFailed(_describe_exit(simulator, returncode, stderr_path))
        logger.warning("%s", error)
        return failed_result(structure, error, simulator, None, 0, t0)


def worker_command(job_path: Path, result_path: Path) -> list[str]:
    """The child's command line (a function, so tests can make a child that crashes)."""
    return [sys.executable, "-m", "simulators.dft_worker", str(job_path), str(result_path)]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env[PARENT_PID_VARIABLE] = str(os.getpid())
    for name in _THREAD_VARIABLES:
        env.setdefault(name, "1")
    # The child must import this very package even when it is not installed (a checkout
    # run from its root, a test's temporary cwd).
    root = str(Path(simulators.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL the child's whole session and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it exited between the timeout and the kill
    proc.wait()


def _describe_exit(simulator: str, returncode: int, stderr_path: Path) -> str:
    if returncode < 0:
        try:
            how = f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"killed by signal {-returncode}"
    else:
        how = f"exited with code {returncode} and no result"
    tail = _last_line(stderr_path)
    return f"{simulator} child process {how}" + (f"; stderr: {tail}" if tail else "")


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][-_STDERR_TAIL_CHARS:] if lines else ""
