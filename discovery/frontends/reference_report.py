"""`discovery references`: the known phases of some chemical systems, per source, and the
hull they make, so that a user can check the reference set before spending compute."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

from discovery.domain.known.phase import MP2020, KnownPhase
from discovery.domain.mp_elemental_references import mp_chemical_potentials


@dataclass(frozen=True)
class HullRow:
    """One known phase on the database hull (formation energies against MP's elements)."""

    phase: KnownPhase
    e_form_per_atom: float
    e_above_hull: float
    decomposition: str


def phase_rows(phases: Sequence[KnownPhase]) -> list[dict[str, Any]]:
    """The known phases as table rows: source, id, formula, space group, database energy."""
    from discovery.store.convert import space_group_number

    return [
        {
            "source": p.source,
            "id": p.id,
            "formula": p.reduced_formula,
            "sites": len(p.structure),
            "spacegroup": p.provenance.get("spacegroup") or space_group_number(p.structure),
            "energy": f"{p.energy_per_atom:.4f} ({p.energy_scheme})"
            if p.energy_per_atom is not None
            else "-",
            "also": ", ".join(p.provenance.get("also", [])) or "-",
        }
        for p in phases
    ]


def database_hull(
    phases: Sequence[KnownPhase], elements: Sequence[str]
) -> tuple[PhaseDiagram, list[HullRow]] | None:
    """The hull of the phases that carry an MP2020-scheme energy, elements at MP's reference
    energies; None when no phase has such an energy."""
    mu = mp_chemical_potentials()
    with_energy = [p for p in phases if p.energy_per_atom is not None and p.energy_scheme == MP2020]
    if not with_energy:
        return None
    entries = [PDEntry(Composition(el), 0.0, name=f"{el} (MP ref.)") for el in elements]
    by_entry: dict[int, KnownPhase] = {}
    for phase in with_energy:
        comp = phase.composition
        assert phase.energy_per_atom is not None
        e_form = phase.energy_per_atom - sum(
            frac * mu[el.symbol] for el, frac in comp.fractional_composition.items()
        )
        entry = PDEntry(comp, e_form * comp.num_atoms, name=f"{phase.reduced_formula} ({phase.id})")
        by_entry[id(entry)] = phase
        entries.append(entry)
    diagram = PhaseDiagram(entries)
    rows = []
    for entry in entries:
        known = by_entry.get(id(entry))
        if known is None:
            continue
        decomp, e_hull = diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
        parts = sorted(
            f"{getattr(e, 'name', e.composition)}:{x:.2f}" for e, x in (decomp or {}).items()
        )
        rows.append(HullRow(known, entry.energy_per_atom, float(e_hull or 0.0), " + ".join(parts)))
    rows.sort(key=lambda r: (r.phase.reduced_formula, r.e_above_hull))
    return diagram, rows


def write_plot(diagram: PhaseDiagram, path: Path) -> Path:
    """The phase diagram as a PNG (pymatgen's matplotlib plotter)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from pymatgen.analysis.phase_diagram import PDPlotter

    PDPlotter(diagram, backend="matplotlib", show_unstable=0.2).get_plot()
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.savefig(path, dpi=150, bbox_inches="tight")
    plt.close("all")
    return path
