"""The 89 MP elemental reference entries that ship with the package.

Source: janosh/matbench-discovery `data/mp/2023-02-07-mp-elemental-reference-entries.json.gz`
(repository MIT; Materials Project data CC-BY-4.0). They are the lowest-energy MP GGA/GGA+U
entries per element, the references Matbench Discovery uses for formation energies.
"""

from __future__ import annotations

import gzip
import json
import warnings
from functools import cache
from importlib.resources import files

from pymatgen.entries.computed_entries import ComputedEntry

DATA = "mp-elemental-reference-entries.json.gz"


@cache
def mp_elemental_entries() -> dict[str, ComputedEntry]:
    """Materials Project's ground-state entry of each element, by symbol, from the bundled
    data file (read once)."""
    raw = files("discovery").joinpath("data", DATA).read_bytes()
    data = json.loads(gzip.decompress(raw))
    with warnings.catch_warnings():
        # pymatgen warns that noble gases have no electronegativity; irrelevant here
        warnings.simplefilter("ignore", UserWarning)
        return {el: ComputedEntry.from_dict(d) for el, d in data.items()}


def mp_chemical_potentials() -> dict[str, float]:
    """Element -> MP reference energy per atom (eV/atom)."""
    return {el: e.energy_per_atom for el, e in mp_elemental_entries().items()}
