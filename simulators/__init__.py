"""Physics back-ends: relax or evaluate pymatgen Structures with ASE calculators."""

from simulators.calculators import available_simulators, elements_supported, make_calculator
from simulators.records import RelaxResult
from simulators.relax import relax_structure, single_point
from simulators.settings import RelaxSettings
from simulators.simulator import Simulator

__all__ = [
    "RelaxResult",
    "RelaxSettings",
    "Simulator",
    "available_simulators",
    "elements_supported",
    "make_calculator",
    "relax_structure",
    "single_point",
]
