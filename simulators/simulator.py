"""A named back-end at one fidelity: calculator factory plus relaxation settings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ase.calculators.calculator import BaseCalculator
from pymatgen.core import Structure

from simulators.calculators import check_name, make_calculator
from simulators.records import RelaxResult
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
    ) -> None:
        # Catch a typo now; building the calculator itself waits until first use.
        check_name(name)
        self.name = name
        self.settings = settings
        self.device = device
        self.options = dict(options or {})
        self._calculator: BaseCalculator | None = None

    def __repr__(self) -> str:
        return f"Simulator({self.name!r}, device={self.device!r}, settings={self.settings!r})"

    @property
    def calculator(self) -> BaseCalculator:
        # Built on first use: a Simulator can be configured cheaply and never run.
        if self._calculator is None:
            self._calculator = make_calculator(self.name, self.device, **self.options)
        return self._calculator

    def relax(self, structure: Structure) -> RelaxResult:
        return relax_structure(structure, self.calculator, self.settings, self.name)

    def relax_many(self, structures: Iterable[Structure]) -> Iterator[RelaxResult]:
        """Relax in order, yielding each result as soon as it exists."""
        for structure in structures:
            yield self.relax(structure)

    def single_point(self, structure: Structure) -> RelaxResult:
        return single_point(structure, self.calculator, self.settings, self.name)
