"""Build ASE calculators by name: built-ins or a ``package.module:factory`` import path."""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import warnings
from typing import Any

from ase.calculators.calculator import BaseCalculator

logger = logging.getLogger(__name__)

_BUILTINS = ("emt", "chgnet", "sevennet", "gpaw")

# Elements ASE's EMT has parameters for. H, C, N and O are only there for adsorbate
# studies on the metals and are poor for bulk phases.
_EMT_ELEMENTS = frozenset({"Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt", "H", "C", "N", "O"})

# Loading CHGNet costs seconds; a campaign relaxes hundreds of structures per process.
_CHGNET_MODELS: dict[tuple[str, str], Any] = {}
# SevenNet checkpoints per name, and built models per (name, device, batched): the ASE
# calculator switches its model to single-graph mode, the batched relaxer needs batch mode,
# so the two never share one instance.
_SEVENNET_CHECKPOINTS: dict[str, Any] = {}
_SEVENNET_MODELS: dict[tuple[str, str, bool], Any] = {}


def available_simulators() -> list[str]:
    """Built-in simulator names (an import path ``package.module:factory`` also works)."""
    return list(_BUILTINS)


def elements_supported(name: str) -> set[str] | None:
    """Elements a simulator has parameters for; None means no restriction is known.

    EMT covers Al, Cu, Ag, Au, Ni, Pd and Pt properly. It also returns H, C, N and O,
    but those parameters were fitted for adsorbates on the metals and give poor
    energies for anything else, so treat them as a smoke test only.
    """
    if name == "emt":
        return set(_EMT_ELEMENTS)
    if name == "gpaw":
        # PAW setups shipped with gpaw-data; None when the [dft] extra is not installed.
        from simulators.gpaw_calc import gpaw_elements

        return gpaw_elements()
    if name in ("chgnet", "sevennet") or _is_import_path(name):
        return None
    raise _unknown(name)


def check_name(name: str) -> None:
    """Raise ValueError unless ``name`` is a built-in or looks like an import path."""
    if name not in _BUILTINS and not _is_import_path(name):
        raise _unknown(name)


def make_calculator(name: str, device: str = "cpu", **options: Any) -> BaseCalculator:
    """A fresh ASE calculator for ``name``.

    ``options`` go to the calculator (EMT, CHGNetCalculator) or to the factory of an
    import path. For CHGNet, ``model_name`` selects the checkpoint shipped with the
    package (default "0.3.0"); the loaded model is shared per (model, device). For
    SevenNet, ``model_name`` names a checkpoint shipped with ``sevenn`` (default "7net-0").
    For GPAW (the ``[dft]`` extra), see ``simulators.gpaw_calc.GpawOptions`` (``ecut``,
    ``kpt_density``, ``kpts``, ``smearing``, ``maxiter``, ``spinpol``, ``xc``); this builds
    the calculator in-process, while ``Simulator("gpaw", ...)`` runs each structure in a
    child process under a wall-time limit.
    """
    if name == "emt":
        from ase.calculators.emt import EMT

        return EMT(**options)
    if name == "chgnet":
        return _make_chgnet(device, **options)
    if name == "sevennet":
        return _make_sevennet(device, **options)
    if name == "gpaw":
        from simulators.gpaw_calc import make_gpaw_calculator

        return make_gpaw_calculator(device, **options)
    if _is_import_path(name):
        return _make_from_path(name, **options)
    raise _unknown(name)


def _is_import_path(name: str) -> bool:
    module, sep, attr = name.partition(":")
    return bool(sep and module and attr)


def _unknown(name: str) -> ValueError:
    valid = ", ".join(repr(n) for n in available_simulators())
    return ValueError(
        f"unknown simulator {name!r}; valid names: {valid}, or an import path "
        "'package.module:factory' returning an ASE calculator"
    )


def _make_chgnet(device: str, model_name: str = "0.3.0", **options: Any) -> BaseCalculator:
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


def _make_sevennet(device: str, model_name: str = "7net-0", **options: Any) -> BaseCalculator:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from sevenn.calculator import SevenNetCalculator

        model = sevennet_model(model_name, device, batched=False)
        return SevenNetCalculator(model=model, file_type="model_instance", device=device, **options)


def _make_from_path(path: str, **options: Any) -> BaseCalculator:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"cannot import calculator module {module_name!r}: {e}") from e
    factory = module
    for part in attr.split("."):
        try:
            factory = getattr(factory, part)
        except AttributeError as e:
            raise ValueError(f"{module_name!r} has no attribute {attr!r}") from e
    if not callable(factory):
        raise ValueError(f"{path!r} is not callable")
    calc = factory(**options)
    if not isinstance(calc, BaseCalculator):
        raise TypeError(
            f"{path!r} returned {type(calc).__name__}, not an ASE calculator "
            "(ase.calculators.calculator.BaseCalculator)"
        )
    return calc
