"""Reference structures (elements and known compounds) relaxed by the campaign's simulator."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from discovery.config import FidelityConfig
from discovery.domain.reference_structures import reference_records
from discovery.engine.context import CampaignContext
from discovery.engine.relaxation import pending, relax_and_record
from discovery.store import Candidate
from discovery.store.convert import candidate_row
from simulators.registry import get_backend

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


def ensure_references(ctx: CampaignContext) -> None:
    """Add the reference structures to the store and relax those not yet computed on each
    rung (the rungs above the first only near the hull below)."""
    records = reference_records(ctx.config.elements, ctx.config.references.known)
    with ctx.db.session() as session:
        have = set(
            session.scalars(
                select(Candidate.uid).where(
                    Candidate.campaign_id == ctx.campaign_id, Candidate.is_reference.is_(True)
                )
            )
        )
        for k, rec in enumerate(records):
            uid = f"ref-{k:03d}-{rec.parent}"
            if uid not in have:
                session.add(candidate_row(rec, ctx.campaign_id, uid, -1, is_reference=True))
    # Every rung of the ladder has its own references: a hull never mixes fidelities.
    for rung, sim in enumerate(ctx.config.ladder):
        with ctx.db.session() as session:
            todo = [c.id for c in pending(ctx, session, "reference", sim.fidelity)]
            if rung > 0:
                todo = _near_the_hull_below(ctx, session, todo, rung)
        if todo:
            log.info("relaxing %d reference structures with %s", len(todo), sim.fidelity)
        with ctx.progress.stage(f"references ({sim.fidelity})", len(todo)) as task:
            relax_and_record(ctx, todo, -1, task, rung)


def _near_the_hull_below(
    ctx: CampaignContext, session: Session, ids: list[int], rung: int
) -> list[int]:
    """The references worth an expensive rung: those on or near the rung-below hull. A bcc
    polymorph 0.5 eV/atom above fcc will not become an element's ground state in DFT."""
    from discovery.engine.campaign_hull import current_hull

    hull, e_form = current_hull(ctx, session, rung - 1)
    rung_config = ctx.config.ladder[rung]
    assert isinstance(rung_config, FidelityConfig), "rungs above the first are FidelityConfig"
    margin = rung_config.promote_max_e_above_hull
    return [cid for cid in ids if cid in e_form and hull.point(cid).e_above_hull <= margin]


def chemical_potential_report(ctx: CampaignContext) -> dict[str, float]:
    """This simulator's elemental energies and their offsets from MP's elemental references.

    For a potential trained on MP data (CHGNet) the offsets show how far its best simple
    polymorph sits from MP's ground state; for EMT they are meaningless and not reported."""
    from pymatgen.core import Composition

    from discovery.domain.convex_hull import elemental_chemical_potentials
    from discovery.domain.mp_elemental_references import mp_chemical_potentials

    with ctx.db.session() as session:
        pairs = ctx.validated_pairs(session)
        mu = elemental_chemical_potentials(
            (Composition(c.formula), k.energy_per_atom)
            for c, k in pairs
            if c.is_reference and k.energy_per_atom is not None
        )
    report = {f"mu_{el}": value for el, value in mu.items()}
    # Only a potential trained on MP data has energies on MP's (MP2020-corrected) scale.
    if get_backend(ctx.config.simulator.name).mp_compatible:
        mp = mp_chemical_potentials()
        for el, value in mu.items():
            report[f"mu_minus_mp_{el}"] = value - mp[el]
            log.info("%s: mu = %.3f eV/atom, %+.3f vs MP reference", el, value, value - mp[el])
    return report
