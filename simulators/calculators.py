"""The ASE calculators the registry's built-in back-ends name, and ``make_calculator``."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Any

from ase.calculators.calculator import BaseCalculator

from simulators.registry import backend_names, get_backend, resolve

logger = logging.getLogger(__name__)

# Loading CHGNet costs seconds; a campaign relaxes hundreds of structures per process.
_CHGNET_MODELS: dict[tuple[str, str], Any] = {}
# SevenNet checkpoints per name, and built models per (name, device, batched): the ASE
# calculator switches its model to single-graph mode, the batched relaxer needs batch mode,
# so the two never share one instance.
_SEVENNET_CHECKPOINTS: dict[str, Any] = {}
_SEVENNET_MODELS: dict[tuple[str, str, bool], Any] = {}


def available_simulators() -> list[str]:
    """Registered simulator names (an import path ``package.module:factory`` also works)."""
    return backend_names()


def elements_supported(name: str) -> set[str] | None:
    """Elements a simulator has parameters for; None means no restriction is known.

    EMT covers Al, Cu, Ag, Au, Ni, Pd and Pt properly. It also returns H, C, N and O,
    but those parameters were fitted for adsorbates on the metals and give poor
    energies for anything else, so treat them as a smoke test only. GPAW's are the PAW
    setups installed (None without the [dft] extra).
    """
    backend = get_backend(name)
    if backend.elements_lookup is not None:
        return resolve(backend.elements_lookup)()
    return None if backend.elements is None else set(backend.elements)


# What the relaxation code asks of a calculator, through ase.Atoms.
_CALCULATOR_METHODS = ("get_potential_energy", "get_forces", "get_stress")


def make_calculator(name: str, device: str = "cpu", **options: Any) -> BaseCalculator:
    """A fresh ASE calculator for ``name`` (see ``simulators.registry``).

    ``options`` go to the back-end's factory. For CHGNet, ``model_name`` selects the
    checkpoint shipped with the package (default "0.3.0"); the loaded model is shared per
    (model, device). For SevenNet, ``model_name`` names a checkpoint shipped with ``sevenn``
    (default "7net-0"). For GPAW (the ``[dft]`` extra), see ``simulators.gpaw_calc.GpawOptions``
    (``ecut``, ``kpt_density``, ``kpts``, ``smearing``, ``maxiter``, ``spinpol``, ``xc``); this
    builds the calculator in-process, while ``Simulator("gpaw", ...)`` runs each structure in
    a child process under a wall-time limit. An import path's factory gets only ``options``.
    """
    backend = get_backend(name)
    factory = resolve(backend.factory)
    calc = factory(device, **options) if backend.takes_device else factory(**options)
    # Duck-typed: GPAW's new calculator implements ASE's interface without deriving from
    # BaseCalculator, and a user's factory may do the same.
    if not all(callable(getattr(calc, m, None)) for m in _CALCULATOR_METHODS):
        raise TypeError(
            f"{backend.factory!r} returned {type(calc).__name__}, not an ASE calculator "
            f"(it needs {', '.join(_CALCULATOR_METHODS)})"
        )
    return calc


def make_emt(device: str = "cpu", **options: Any) -> BaseCalculator:
    """ASE's effective-medium theory (the toy world); `device` is ignored."""
    from ase.calculators.emt import EMT

    return EMT(**options)


def make_chgnet(device: str, model_name: str = "0.3.0", **options: Any) -> BaseCalculator:
    """CHGNet's ASE calculator with the weights that ship in its package."""
    from chgnet.model.dynamics import CHGNetCalculator

    model = chgnet_model(model_name, device)
    with contextlib.redirect_stdout(io.StringIO()):
        return CHGNetCalculator(model=model, use_device=device, **options)


def chgnet_model(model_name: str = "0.3.0", device: str = "cpu") -> Any:
    """The shared CHGNet model for (model_name, device), loaded on first use."""
    key = (model_name, device)
    model = _CHGNET_MODELS.get(key)
    if model is None:
        from chgnet.model import CHGNet

        logger.info("loading CHGNet %s on %s", model_name, device)
        # CHGNet announces its device with print(); keep library output on logging.
        with contextlib.redirect_stdout(io.StringIO()):
            model = CHGNet.load(model_name=model_name, use_device=device, verbose=False)
        _CHGNET_MODELS[key] = model
    return model


def sevennet_model(model_name: str = "7net-0", device: str = "cpu", batched: bool = False) -> Any:
    """A shared SevenNet model (eval mode, on ``device``) in single-graph or batch mode."""
    key = (model_name, device, batched)
    model = _SEVENNET_MODELS.get(key)
    if model is None:
        checkpoint = _SEVENNET_CHECKPOINTS.get(model_name)
        with warnings.catch_warnings():
            # "No tensor product accelerator": the CPU path is the only one here.
            warnings.simplefilter("ignore", UserWarning)
            from sevenn.util import load_checkpoint

            from simulators.tensor_product_split import split_weight_slices

            if checkpoint is None:
                logger.info("loading SevenNet checkpoint %s", model_name)
                checkpoint = load_checkpoint(model_name)
                _SEVENNET_CHECKPOINTS[model_name] = checkpoint
            model = checkpoint.build_model()
        model.set_is_batch_data(batched)
        # Same values, a third less force time: see simulators/tensor_product_split.py.
        split_weight_slices(model)
        model.to(device)
        model.eval()
        _SEVENNET_MODELS[key] = model
    return model


def make_sevennet(device: str, model_name: str = "7net-0", **options: Any) -> BaseCalculator:
    """SevenNet's ASE calculator with the weights that ship in its package."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from sevenn.calculator import SevenNetCalculator

        model = sevennet_model(model_name, device, batched=False)
        return SevenNetCalculator(model=model, file_type="model_instance", device=device, **options)
