"""The campaign's hull from the store: formation energies of everything validated on one rung of
the fidelity ladder, the hull they make, and the per-round hull rows. Shared by the hull,
promote, screen, generate and learn stages and the collapse guards."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pymatgen.core import Composition
from sqlalchemy import delete, select

from discovery.domain.convex_hull import (
    FormationHull,
    elemental_chemical_potentials,
    formation_energy_per_atom,
)
from discovery.engine.context import CampaignContext
from discovery.store import Candidate, HullResult
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
    (`discovery.domain.mp2020_corrections`); "mp2020_native": the energy as it is (a model
    trained on corrected energies) against MP's elemental references.
    """
    if scheme == "mp2020":
        return _mp2020_formation_energies(pairs)
    if scheme == "mp2020_native":
        from discovery.domain.mp_elemental_references import mp_chemical_potentials

        mu = mp_chemical_potentials()
    else:
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


SAME_FIDELITY = "same_fidelity"
DATABASE = "database"


def hull_mode(ctx: CampaignContext, rung: int = 0) -> str:
    """The hull one rung is judged on: the configured mode where the rung's energies are
    MP-compatible (formation_energy mp2020), else same_fidelity (a DFT rung's plain-PBE
    energies never share a hull with MP2020-corrected ones)."""
    if ctx.config.ladder[rung].formation_energy != "mp2020":
        return SAME_FIDELITY
    return ctx.config.references.hull_mode


def database_formation_energies(
    session: Session, campaign_id: int
) -> dict[int, tuple[Composition, float]]:
    """Known references with a database energy on the MP2020 scheme: id -> (composition,
    formation energy per atom against MP's elemental references)."""
    from discovery.domain.known.phase import MP2020
    from discovery.domain.mp_elemental_references import mp_chemical_potentials

    mu = mp_chemical_potentials()
    rows = session.execute(
        select(Candidate.id, Candidate.formula, Candidate.origin_detail).where(
            Candidate.campaign_id == campaign_id,
            Candidate.is_reference.is_(True),
            Candidate.origin == "known",
        )
    ).all()
    out: dict[int, tuple[Composition, float]] = {}
    for cid, formula, detail in rows:
        energy = (detail or {}).get("energy_per_atom")
        if energy is None or (detail or {}).get("energy_scheme") != MP2020:
            continue
        comp = Composition(formula)
        out[cid] = (comp, formation_energy_per_atom(comp, energy, mu))
    return out


def current_hull(
    ctx: CampaignContext, session: Session, rung: int = 0, mode: str | None = None
) -> tuple[FormationHull, dict[int, float]]:
    """The hull of one rung of the fidelity ladder (0 = the simulator) and the formation
    energies on it.

    same_fidelity: everything this rung computed, references included. database: the known
    phases at their database energies (the rung's own references leave the hull) and the
    candidates at the rung's MP-compatible formation energies."""
    sim = ctx.config.ladder[rung]
    mode = mode or hull_mode(ctx, rung)
    pairs = validated_pairs(session, ctx.campaign_id, sim.fidelity)
    e_form = formation_energies(pairs, sim.energy_scheme)
    comps = {c.id: Composition(c.formula) for c, _ in pairs}
    if mode == DATABASE:
        references = {c.id for c, _ in pairs if c.is_reference}
        e_form = {cid: e for cid, e in e_form.items() if cid not in references}
        for cid, (comp, e) in database_formation_energies(session, ctx.campaign_id).items():
            comps[cid] = comp
            e_form[cid] = e
    points = [(cid, comps[cid], e) for cid, e in e_form.items()]
    return FormationHull(ctx.config.elements, points), e_form


def other_hull(
    ctx: CampaignContext, session: Session, rung: int = 0
) -> tuple[FormationHull, dict[int, float]] | None:
    """The hull of the mode not configured, where it can be computed: same_fidelity always;
    database only for MP-compatible energies with known phases that have database energies."""
    if hull_mode(ctx, rung) == DATABASE:
        return current_hull(ctx, session, rung, SAME_FIDELITY)
    if ctx.config.ladder[rung].formation_energy != "mp2020":
        return None
    if not database_formation_energies(session, ctx.campaign_id):
        return None
    return current_hull(ctx, session, rung, DATABASE)


def record_hull(ctx: CampaignContext, session: Session, round_index: int, rung: int = 0):
    """Write this round's hull distance of everything computed at one rung, with the
    distance on the other hull mode where both exist; returns the hull and the formation
    energies."""
    fidelity = ctx.config.ladder[rung].fidelity
    mode = hull_mode(ctx, rung)
    hull, e_form = current_hull(ctx, session, rung)
    other = other_hull(ctx, session, rung)
    session.execute(
        delete(HullResult).where(
            HullResult.fidelity == fidelity,
            HullResult.round_index == round_index,
            HullResult.candidate_id.in_(list(e_form)),
        )
    )
    for cid in e_form:
        p = hull.point(cid)
        e_other = None
        if other is not None and cid in other[1]:
            e_other = other[0].point(cid).e_above_hull
        session.add(
            HullResult(
                candidate_id=cid,
                fidelity=fidelity,
                round_index=round_index,
                e_form_per_atom=p.e_form_per_atom,
                e_above_hull=p.e_above_hull,
                stable=p.e_above_hull <= ctx.config.stability_threshold,
                decomposition=p.decomposition,
                hull_mode=mode,
                e_above_hull_other=e_other,
            )
        )
    return hull, e_form
