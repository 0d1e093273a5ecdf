"""The campaign's hull from the store: formation energies of everything validated on one rung of
the fidelity ladder, the hull they make, and the per-round hull rows. Shared by the hull,
promote, screen, generate and learn stages and the collapse guards."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pymatgen.core import Composition
from sqlalchemy import delete

from discovery.domain.convex_hull import (
    FormationHull,
    elemental_chemical_potentials,
    formation_energy_per_atom,
)
from discovery.engine.context import CampaignContext
from discovery.store import HullResult
from discovery.store.convert import structure_from_json
from discovery.store.queries import validated_pairs

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

# MP2020-corrected formation energies by calculation: the correction guesses oxidation states,
# which costs milliseconds per entry, and every stage rebuilds the hull each round.
_MP2020_CACHE: dict[tuple, float | None] = {}


def formation_energies(pairs, scheme: str = "own") -> dict[int, float]:
    """Candidate id -> formation energy per atom at one fidelity.

    scheme "own": against the lowest-energy elemental references of the same fidelity;
    "mp2020": MP2020-corrected energy against MP's elemental references
    (`discovery.domain.mp2020_corrections`).
    """
    if scheme == "mp2020":
        return _mp2020_formation_energies(pairs)
    mu = elemental_chemical_potentials(
        (Composition(c.formula), k.energy_per_atom) for c, k in pairs if c.is_reference
    )
    out: dict[int, float] = {}
    for cand, calc in pairs:
        try:
            out[cand.id] = formation_energy_per_atom(
                Composition(cand.formula), calc.energy_per_atom, mu
            )
        except KeyError as err:
            log.error("%s: %s", cand.uid, err)
    return out


def _mp2020_formation_energies(pairs) -> dict[int, float]:
    from discovery.domain.mp2020_corrections import mp_formation_energy_per_atom

    out: dict[int, float] = {}
    for cand, calc in pairs:
        key = (calc.id, calc.candidate_id, calc.energy_per_atom, cand.formula)
        if key not in _MP2020_CACHE:
            structure = structure_from_json(calc.final_structure or cand.structure)
            _MP2020_CACHE[key] = mp_formation_energy_per_atom(structure, calc.energy_per_atom)
        e_form = _MP2020_CACHE[key]
        if e_form is not None:
            out[cand.id] = e_form
    return out


def current_hull(
    ctx: CampaignContext, session: Session, rung: int = 0
) -> tuple[FormationHull, dict[int, float]]:
    """The hull of one rung of the fidelity ladder (0 = the simulator)."""
    sim = ctx.config.ladder[rung]
    pairs = validated_pairs(session, ctx.campaign_id, sim.fidelity)
    e_form = formation_energies(pairs, sim.formation_energy)
    points = [(c.id, Composition(c.formula), e_form[c.id]) for c, _ in pairs if c.id in e_form]
    return FormationHull(ctx.config.elements, points), e_form


def record_hull(ctx: CampaignContext, session: Session, round_index: int, rung: int = 0):
    """Write this round's hull distance of everything computed at one rung; returns the hull
    and the formation energies."""
    fidelity = ctx.config.ladder[rung].fidelity
    hull, e_form = current_hull(ctx, session, rung)
    session.execute(
        delete(HullResult).where(
            HullResult.fidelity == fidelity,
            HullResult.round_index == round_index,
            HullResult.candidate_id.in_(list(e_form)),
        )
    )
    for cid in e_form:
        p = hull.point(cid)
        session.add(
            HullResult(
                candidate_id=cid,
                fidelity=fidelity,
                round_index=round_index,
                e_form_per_atom=p.e_form_per_atom,
                e_above_hull=p.e_above_hull,
                stable=p.e_above_hull <= ctx.config.stability_threshold,
                decomposition=p.decomposition,
            )
        )
    return hull, e_form
