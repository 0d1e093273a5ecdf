"""Convex hulls in formation-energy space, built only from entries of one fidelity."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition
from pymatgen.entries import Entry

from discovery.domain.records import HullPoint


def elemental_chemical_potentials(
    entries: Iterable[tuple[Composition, float]],
) -> dict[str, float]:
    """Lowest energy per atom of each pure element among (composition, energy per atom)."""
    mu: dict[str, float] = {}
    for comp, epa in entries:
        if len(comp.elements) == 1:
            el = comp.elements[0].symbol
            mu[el] = min(mu.get(el, float("inf")), epa)
    return mu


def formation_energy_per_atom(
    composition: Composition, energy_per_atom: float, mu: Mapping[str, float]
) -> float:
    """(E - sum_i n_i mu_i) / N; raises KeyError naming an element with no reference."""
    comp = composition.fractional_composition
    missing = [el.symbol for el in comp.elements if el.symbol not in mu]
    if missing:
        raise KeyError(f"no elemental reference energy for {', '.join(missing)}")
    return energy_per_atom - sum(frac * mu[el.symbol] for el, frac in comp.items())


class FormationHull:
    """A PhaseDiagram whose elements sit at zero and compounds at N * E_form."""

    def __init__(self, elements: Iterable[str], points: Iterable[tuple[int, Composition, float]]):
        self.elements = sorted(set(elements))
        self._entries: dict[int, PDEntry] = {}
        pd_entries = [PDEntry(Composition(el), 0.0, name=el) for el in self.elements]
        for cid, comp, e_form in points:
            entry = PDEntry(comp, e_form * comp.num_atoms, name=str(cid))
            self._entries[cid] = entry
            pd_entries.append(entry)
        self.diagram = PhaseDiagram(pd_entries)

    def point(self, cid: int) -> HullPoint:
        entry = self._entries[cid]
        decomp, e_hull = self.diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
        # None only with on_error="ignore"; the default raises instead.
        assert decomp is not None and e_hull is not None
        return HullPoint(cid, entry.energy_per_atom, float(e_hull), _describe(decomp))

    def distance(self, composition: Composition, e_form_per_atom: float) -> float:
        """Energy above this hull of a hypothetical entry (negative = below the hull)."""
        entry = PDEntry(composition, e_form_per_atom * composition.num_atoms)
        _, e_hull = self.diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
        assert e_hull is not None  # None only with on_error="ignore"
        return float(e_hull)

    def stable_formulas(self) -> list[str]:
        return sorted(e.composition.reduced_formula for e in self.diagram.stable_entries)


def _describe(decomp: Mapping[Entry, float]) -> str:
    parts = sorted(
        (f"{e.composition.reduced_formula}:{amount:.3f}" for e, amount in decomp.items()),
    )
    return " + ".join(parts)
