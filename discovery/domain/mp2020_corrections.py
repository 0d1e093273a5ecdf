"""Materials Project 2020 energy corrections for potentials trained on MP data.

Matbench Discovery puts a model's total energy on MP's scale by giving it to pymatgen's
`MaterialsProject2020Compatibility` in place of the DFT energy, then takes formation
energies against MP's elemental reference entries
(`discovery.domain.mp_elemental_references`). Its WBM
entries carry the VASP parameters of the real calculation; a generated candidate has none,
so they are reconstructed here from MP's own input-set rule: GGA+U with MP's U values when
the structure holds O or F together with one of Co, Cr, Fe, Mn, Mo, Ni, V, W, plain GGA
otherwise. That is what MP would have run for it, and what the potential was trained to
reproduce.

Limits, stated because they matter for reading the numbers:
- The GGA/GGA+U mixing correction shifts the energy of every "+U" compound by a fitted
  per-element constant (e.g. -1.67 eV per Mn). It is right for hulls that mix GGA and GGA+U
  phases the MP way, and meaningless next to plain-PBE (GPAW) energies: never compare a
  corrected potential energy with an uncorrected DFT one on one hull.
- Anion corrections (oxide, peroxide, superoxide, sulfide, fluoride, ...) need oxidation
  states; pymatgen guesses them from the composition and, for oxygen, from O-O distances in
  the structure. An entry whose oxidation states cannot be assigned is not corrected and is
  reported as such (`None`), not silently left on the raw scale.
"""

from __future__ import annotations

import logging
import warnings
from functools import cache

from pymatgen.core import Structure
from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
from pymatgen.entries.computed_entries import ComputedStructureEntry

from discovery.domain.mp_elemental_references import mp_chemical_potentials

log = logging.getLogger(__name__)


@cache
def _compatibility() -> MaterialsProject2020Compatibility:
    # No POTCAR check: a potential has no POTCARs, the run type and U values are what count.
    return MaterialsProject2020Compatibility(check_potcar=False)


def mp_parameters(structure: Structure) -> dict:
    """The run type and U values MP's input sets would use for this structure."""
    u_settings = _compatibility().u_settings  # {anion: {metal: U}}
    symbols = {el.symbol for el in structure.composition.elements}
    hubbards: dict[str, float] = {}
    for anion, metals in u_settings.items():
        if anion in symbols:
            hubbards.update({m: u for m, u in metals.items() if m in symbols})
    if hubbards:
        hubbards.update({el: 0.0 for el in symbols if el not in hubbards})
        return {"run_type": "GGA+U", "hubbards": hubbards}
    return {"run_type": "GGA", "hubbards": {}}


def corrected_energy_per_atom(structure: Structure, energy_per_atom: float) -> float | None:
    """Energy per atom with MP2020 corrections, or None when MP2020 rejects the entry."""
    entry = ComputedStructureEntry(
        structure, energy_per_atom * len(structure), parameters=mp_parameters(structure)
    )
    with warnings.catch_warnings():
        # "Failed to guess oxidation states" and friends: reported below as a None.
        warnings.simplefilter("ignore")
        processed = _compatibility().process_entry(entry, clean=True)
    if processed is None:
        log.warning("MP2020 cannot correct %s", structure.composition.reduced_formula)
        return None
    return processed.energy_per_atom


def mp_formation_energy_per_atom(structure: Structure, energy_per_atom: float) -> float | None:
    """Formation energy on MP's scale: MP2020-corrected energy minus MP's elemental
    reference energies, weighted by composition (Matbench Discovery's definition)."""
    corrected = corrected_energy_per_atom(structure, energy_per_atom)
    if corrected is None:
        return None
    mu = mp_chemical_potentials()
    comp = structure.composition.fractional_composition
    return corrected - sum(frac * mu[el.symbol] for el, frac in comp.items())
