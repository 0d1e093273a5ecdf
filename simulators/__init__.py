"""Physics back-ends: relax or evaluate pymatgen Structures with ASE calculators.

The names below are imported on first use, not with the package: ``simulators.registry``
(which back-ends exist) is read when a campaign config is checked, in processes that should
not pay for ASE, pymatgen or a potential's imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulators.batch_models import (
        BatchModel,
        Evaluation,
        PerStructureBatch,
        make_batch_model,
    )
    from simulators.batch_relax import relax_batched
    from simulators.calculators import available_simulators, elements_supported, make_calculator
    from simulators.dft_subprocess import run_in_subprocess
    from simulators.gpaw_calc import GpawOptions
    from simulators.records import RelaxResult
    from simulators.registry import Backend, backend_names, get_backend, register
    from simulators.relax import relax_structure, single_point
    from simulators.settings import RelaxSettings
    from simulators.simulator import Simulator

_WHERE = {
    "BatchModel": "batch_models",
    "Evaluation": "batch_models",
    "PerStructureBatch": "batch_models",
    "make_batch_model": "batch_models",
    "relax_batched": "batch_relax",
    "available_simulators": "calculators",
    "elements_supported": "calculators",
    "make_calculator": "calculators",
    "run_in_subprocess": "dft_subprocess",
    "GpawOptions": "gpaw_calc",
    "RelaxResult": "records",
    "Backend": "registry",
    "backend_names": "registry",
    "get_backend": "registry",
    "register": "registry",
    "relax_structure": "relax",
    "single_point": "relax",
    "RelaxSettings": "settings",
    "Simulator": "simulator",
}

# `models` and `simulators` are generic top-level names, kept because the design fixes them;
# this marker (checked by tests/test_architecture.py) says which distribution a module
# imported under that name belongs to.
__distribution__ = "crystal-discovery"

__all__ = [
    "Backend",
    "BatchModel",
    "Evaluation",
    "GpawOptions",
    "PerStructureBatch",
    "RelaxResult",
    "RelaxSettings",
    "Simulator",
    "available_simulators",
    "backend_names",
    "elements_supported",
    "get_backend",
    "make_batch_model",
    "make_calculator",
    "register",
    "relax_batched",
    "relax_structure",
    "run_in_subprocess",
    "single_point",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'simulators' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"simulators.{module}"), name)
    globals()[name] = value  # once found, an ordinary attribute
    return value
