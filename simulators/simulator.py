"""A named back-end at one fidelity: calculator factory plus relaxation settings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ase.calculators.calculator import BaseCalculator
from pymatgen.core import Structure

from simulators.batch_models import BatchModel, make_batch_model
from simulators.batch_relax import relax_batched
from simulators.calculators import make_calculator
from simulators.dft_subprocess import run_in_subprocess
from simulators.records import RelaxResult
from simulators.registry import get_backend, names_with, or_list, resolve
from simulators.relax import relax_structure, single_point
from simulators.settings import RelaxSettings


class Simulator:
    """One back-end at one fidelity: a named ASE calculator plus relaxation settings."""

    def __init__(
        self,
        name: str,
        settings: RelaxSettings = RelaxSettings(),
        device: str = "cpu",
        options: dict[str, Any] | None = None,
        batch_model: BatchModel | None = None,
    ) -> None:
        """``name`` is a registered back-end (``simulators.registry``) or an import path.
        ``batch_model`` overrides the back-end's batched form (or gives one to a back-end
        without it, e.g. ``PerStructureBatch`` around any calculator).

        A subprocess back-end (``gpaw``) relaxes and evaluates each structure in a child
        process under ``settings.max_seconds`` (default: the back-end's, 1800 s for GPAW);
        ``calculator`` still builds it in this process for direct use."""
        # Catch a typo (or bad options) now; building the calculator waits until first use.
        self.backend = get_backend(name)
        if self.backend.options_check is not None:
            resolve(self.backend.options_check)(dict(options or {}))
        self.name = name
        self.settings = settings
        self.device = device
        self.options = dict(options or {})
        self._calculator: BaseCalculator | None = None
        self._batch_model = batch_model

    def __repr__(self) -> str:
        return f"Simulator({self.name!r}, device={self.device!r}, settings={self.settings!r})"

    @property
    def calculator(self) -> BaseCalculator:
        # Built on first use: a Simulator can be configured cheaply and never run.
        if self._calculator is None:
            self._calculator = make_calculator(self.name, self.device, **self.options)
        return self._calculator

    @property
    def can_batch(self) -> bool:
        """Whether this back-end has a batched form (one model call for many structures)."""
        return self._batch_model is not None or self.backend.can_batch

    @property
    def batch_model(self) -> BatchModel:
        if self._batch_model is None:
            self._batch_model = make_batch_model(
                self.name, self.device, self.options.get("model_name")
            )
        return self._batch_model

    @property
    def in_subprocess(self) -> bool:
        """Whether each structure runs in a child process under a hard wall-time limit."""
        return self.backend.subprocess

    def relax(self, structure: Structure) -> RelaxResult:
        if self.in_subprocess:
            return self._in_subprocess(structure, relax=True)
        return relax_structure(structure, self.calculator, self.settings, self.name)

    def relax_many(
        self, structures: Iterable[Structure], batched: bool = False, batch_size: int = 32
    ) -> Iterator[RelaxResult]:
        """Relax in order, yielding each result as soon as it (and those before it) exist.

        ``batched`` relaxes up to ``batch_size`` structures at once with one model call
        per step (universal potentials only, see ``can_batch``).
        """
        if not batched:
            for structure in structures:
                yield self.relax(structure)
            return
        pending: dict[int, RelaxResult] = {}
        next_index = 0
        for index, result in self.relax_as_completed(structures, True, batch_size):
            pending[index] = result
            while next_index in pending:
                yield pending.pop(next_index)
                next_index += 1

    def relax_as_completed(
        self, structures: Iterable[Structure], batched: bool = False, batch_size: int = 32
    ) -> Iterator[tuple[int, RelaxResult]]:
        """``(input index, result)`` pairs in the order results exist, for committing each
        at once."""
        if not batched:
            for index, structure in enumerate(structures):
                yield index, self.relax(structure)
            return
        if not self.can_batch:
            raise ValueError(
                f"simulator {self.name!r} has no batched form; batched simulators: "
                + or_list(names_with(lambda b: b.can_batch))
            )
        yield from relax_batched(structures, self.batch_model, self.settings, self.name, batch_size)

    def single_point(self, structure: Structure) -> RelaxResult:
        if self.in_subprocess:
            return self._in_subprocess(structure, relax=False)
        return single_point(structure, self.calculator, self.settings, self.name)

    def single_point_many(self, structures: Iterable[Structure]) -> Iterator[RelaxResult]:
        """Single points in order, each yielded as soon as it exists (the DFT tier runs each
        in its own child process under the wall-time limit)."""
        for structure in structures:
            yield self.single_point(structure)

    def _in_subprocess(self, structure: Structure, relax: bool) -> RelaxResult:
        return run_in_subprocess(
            structure,
            self.name,
            self.settings,
            self.options,
            relax=relax,
            default_max_seconds=self.backend.max_seconds,
            backend=self.backend,
        )
