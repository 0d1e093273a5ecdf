"""Physics back-ends: relax or evaluate pymatgen Structures with ASE calculators."""

from simulators.batch_models import BatchModel, Evaluation, PerStructureBatch, make_batch_model
from simulators.batch_relax import relax_batched
from simulators.calculators import available_simulators, elements_supported, make_calculator
from simulators.dft_subprocess import run_in_subprocess
from simulators.gpaw_calc import GpawOptions
from simulators.records import RelaxResult
from simulators.relax import relax_structure, single_point
from simulators.settings import RelaxSettings
from simulators.simulator import Simulator

# `models` and `simulators` are generic top-level names, kept because the design fixes them;
# this marker (checked by tests/test_architecture.py) says which distribution a module
# imported under that name belongs to.
__distribution__ = "crystal-discovery"

__all__ = [
    "BatchModel",
    "Evaluation",
    "GpawOptions",
    "PerStructureBatch",
    "make_batch_model",
    "relax_batched",
    "RelaxResult",
    "RelaxSettings",
    "Simulator",
    "available_simulators",
    "elements_supported",
    "make_calculator",
    "relax_structure",
    "run_in_subprocess",
    "single_point",
]
