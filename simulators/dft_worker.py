"""Child-process entry point of ``simulators.dft_subprocess``: one structure, one result file.

    python -m simulators.dft_worker JOB.json RESULT.json

JOB.json holds the simulator name, its options, the RelaxSettings, the structure and whether
to relax; RESULT.json receives ``RelaxResult.to_dict()``. Failures the relaxation code
recognises come back as a failed result like anywhere else; anything that kills this process
(a segfault in a library, the parent's kill at the wall-time limit) leaves no result file,
which the parent reads as a failure.

The parent is the one that enforces the wall-time limit; two backstops cover a parent that
dies first (a campaign SIGKILLed and resumed): on Linux the kernel kills this process with
its parent (PR_SET_PDEATHSIG), and everywhere an alarm ends it a little after the limit.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pymatgen.core import Structure

from simulators.calculators import make_calculator
from simulators.outcome import failed_result
from simulators.records import RelaxResult
from simulators.registry import Backend, ensure_registered
from simulators.relax import relax_structure, single_point
from simulators.settings import RelaxSettings

logger = logging.getLogger(__name__)

PARENT_PID_VARIABLE = "DISCOVERY_DFT_PARENT_PID"
_PR_SET_PDEATHSIG = 1
# The parent's kill normally comes first: its clock started before this interpreter did.
_ALARM_GRACE_S = 30


@dataclass(frozen=True)
class Job:
    """What the parent asks the child to do; JSON both ways."""

    simulator: str
    options: dict[str, Any]
    settings: RelaxSettings
    structure: Structure
    relax: bool
    time_limit_s: float | None = None
    # The parent's back-end: one registered at run time exists only in the parent.
    backend: Backend | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "simulator": self.simulator,
            "options": self.options,
            "settings": asdict(self.settings),
            "structure": self.structure.as_dict(),
            "relax": self.relax,
            "time_limit_s": self.time_limit_s,
            "backend": None if self.backend is None else self.backend.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Job:
        return cls(
            simulator=d["simulator"],
            options=dict(d["options"]),
            settings=RelaxSettings(**d["settings"]),
            structure=Structure.from_dict(d["structure"]),
            relax=bool(d["relax"]),
            time_limit_s=d.get("time_limit_s"),
            backend=Backend.from_dict(d["backend"]) if d.get("backend") else None,
        )


def run_job(job: Job) -> RelaxResult:
    """The relaxation or single point; a calculator that cannot even be built is a result."""
    t0 = time.perf_counter()
    try:
        if job.backend is not None:
            ensure_registered(job.backend)
        calculator = make_calculator(job.simulator, "cpu", **job.options)
    except Exception as e:
        return failed_result(job.structure, e, job.simulator, None, 0, t0)
    run = relax_structure if job.relax else single_point
    return run(job.structure, calculator, job.settings, job.simulator)


def _die_with_parent() -> None:
    parent = os.environ.get(PARENT_PID_VARIABLE)
    if parent is None or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):
        os._exit(1)  # the parent died before prctl took effect


def write_result(result: RelaxResult, path: Path) -> None:
    """Write `result` as JSON to `path` atomically (via a renamed temporary file)."""
    # Rename into place so the parent never reads half a file from a child killed mid-write.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result.to_dict()))
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    """Entry point of the DFT subprocess: relax the job file's structure and write the result
    file; returns the exit status."""
    if len(argv) != 2:
        sys.stderr.write(__doc__ or "")
        return 2
    # This process is an entry point: its warnings go to stderr, which the parent keeps
    # and quotes when the child dies.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    job_path, result_path = Path(argv[0]), Path(argv[1])
    _die_with_parent()
    job = Job.from_dict(json.loads(job_path.read_text()))
    if job.time_limit_s is not None:
        signal.alarm(math.ceil(job.time_limit_s) + _ALARM_GRACE_S)
    write_result(run_job(job), result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
