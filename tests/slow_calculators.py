"""A real EMT calculator that takes its time, so that a test can kill a worker mid-task.
Importable by Dask workers when tests/ is on their PYTHONPATH."""

from __future__ import annotations

import time

from ase.calculators.emt import EMT


class SlowEMT(EMT):
    def __init__(self, delay: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    def calculate(self, *args, **kwargs) -> None:
        time.sleep(self.delay)
        super().calculate(*args, **kwargs)


def factory(delay: float = 0.05) -> SlowEMT:
    return SlowEMT(delay)


class DyingEMT(EMT):
    """EMT whose process dies (as from a segfault or the OOM killer) on a cell this small."""

    def __init__(self, below: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.below = below

    def calculate(self, atoms=None, *args, **kwargs) -> None:
        if atoms is not None and atoms.cell.volume < self.below:
            import os

            os._exit(137)
        super().calculate(atoms, *args, **kwargs)


def dying(below: float = 0.0) -> DyingEMT:
    return DyingEMT(below)
