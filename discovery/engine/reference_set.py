"""Reference structures (elements, prototype specs and known phases) in the store, relaxed by
each rung's simulator."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select

from discovery.config import CampaignConfig, FidelityConfig
from discovery.domain.known.phase import KnownPhase
from discovery.domain.records import CandidateRecord
from discovery.domain.reference_structures import reference_records
from discovery.engine.context import CampaignContext
from discovery.engine.relaxation import pending, relax_and_record
from discovery.store import Calculation, Candidate
from discovery.store.convert import candidate_row
from simulators.registry import get_backend

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


# Diatomic gases: their known crystals are molecules held by van der Waals forces, which a
# potential may collapse if the cell relaxes; they relax in a fixed cell, like the dimers.
MOLECULAR = {"H", "N", "O", "F", "Cl", "Br", "I"}


def known_record(phase: KnownPhase) -> CandidateRecord:
    """A known phase as a reference candidate; its database energy and provenance travel in
    the detail, where the hull and the novelty check read them."""
    symbols = {el.symbol for el in phase.structure.composition.elements}
    detail = {
        "source": phase.source,
        "known_id": phase.id,
        "energy_per_atom": phase.energy_per_atom,
        "energy_scheme": phase.energy_scheme,
        "provenance": phase.provenance,
    }
    if len(symbols) == 1 and symbols <= MOLECULAR:
        detail["fixed_cell"] = True
    return CandidateRecord(phase.structure, "known", phase.id, detail)


def _known_uid(phase: KnownPhase) -> str:
    slug = re.sub(r"[^0-9A-Za-z_.-]+", "_", phase.id)
    if len(slug) > 48:  # ids of local files can be long; the hash keeps them distinct
        slug = slug[:36] + "-" + hashlib.sha256(phase.id.encode()).hexdigest()[:11]
    return f"known-{slug}"


def reference_rows(
    config: CampaignConfig, phases: list[KnownPhase]
) -> list[tuple[str, CandidateRecord]]:
    """(uid, record) of every reference: each element's simple polymorphs, the prototype
    specs of `references.known`, and the known phases of `references.sources`."""
    records = reference_records(config.elements, config.references.known)
    out = [(f"ref-{k:03d}-{rec.parent}", rec) for k, rec in enumerate(records)]
    out += [(_known_uid(phase), known_record(phase)) for phase in phases]
    return out


def ensure_references(ctx: CampaignContext, phases: Sequence[KnownPhase] = ()) -> None:
    """Add the reference structures to the store and relax those not yet computed on each
    rung (the rungs above the first only near the hull below). A reference that this store
    already relaxed the same way, for another campaign, is copied, not relaxed again."""
    with ctx.db.session() as session:
        have = set(
            session.scalars(
                select(Candidate.uid).where(
                    Candidate.campaign_id == ctx.campaign_id, Candidate.is_reference.is_(True)
                )
            )
        )
        for uid, rec in reference_rows(ctx.config, list(phases)):
            if uid not in have:
                session.add(candidate_row(rec, ctx.campaign_id, uid, -1, is_reference=True))
    # Every rung of the ladder has its own references: a hull never mixes fidelities.
    for rung, sim in enumerate(ctx.config.ladder):
        with ctx.db.session() as session:
            todo = [c.id for c in pending(ctx, session, "reference", sim.fidelity)]
            if rung > 0:
                todo = _near_the_hull_below(ctx, session, todo, rung)
            todo = _reuse_computed(ctx, session, todo, rung)
        if todo:
            log.info("relaxing %d reference structures with %s", len(todo), sim.fidelity)
        with ctx.progress.stage(f"references ({sim.fidelity})", len(todo)) as task:
            relax_and_record(ctx, todo, -1, task, rung)
    _warn_failed_references(ctx)


def _reuse_computed(ctx: CampaignContext, session: Session, ids: list[int], rung: int) -> list[int]:
    """Copy the calculations of references that another campaign of this store computed
    alike (same reference, same starting structure, same simulator settings); returns the
    ids still to relax."""
    cfg = ctx.config.ladder[rung]
    left = []
    reused = 0
    for cid in ids:
        cand = session.get_one(Candidate, cid)
        fixed = bool((cand.origin_detail or {}).get("fixed_cell"))
        key = ctx.simulator_spec(cfg.relax_cell and not fixed, rung).settings_key()
        earlier = session.execute(
            select(Calculation, Candidate.structure)
            .join(Candidate, Candidate.id == Calculation.candidate_id)
            .where(
                Candidate.is_reference.is_(True),
                Candidate.origin == cand.origin,
                Candidate.parent == cand.parent,
                Candidate.campaign_id != ctx.campaign_id,
                Calculation.fidelity == cfg.fidelity,
                Calculation.settings_key == key,
            )
            .order_by(Calculation.id)
        ).all()
        match = next((calc for calc, start in earlier if start == cand.structure), None)
        if match is None:
            left.append(cid)
            continue
        session.add(_copy(match, cid))
        reused += 1
    if reused:
        log.info("%d references at %s reused from earlier campaigns", reused, cfg.fidelity)
    return left


def _copy(calc: Calculation, candidate_id: int) -> Calculation:
    columns = [c.key for c in Calculation.__table__.columns if c.key not in ("id", "candidate_id")]
    row = Calculation(candidate_id=candidate_id, **{k: getattr(calc, k) for k in columns})
    row.round_index = -1
    return row


def _warn_failed_references(ctx: CampaignContext) -> None:
    """Name every reference that failed to relax: the hull is built without it."""
    with ctx.db.session() as session:
        failed = session.execute(
            select(Candidate.uid, Candidate.formula, Calculation.fidelity, Calculation.error)
            .join(Calculation, Calculation.candidate_id == Candidate.id)
            .where(
                Candidate.campaign_id == ctx.campaign_id,
                Candidate.is_reference.is_(True),
                Calculation.ok.is_(False),
            )
        ).all()
    for uid, formula, fidelity, error in failed:
        log.warning(
            "reference %s (%s) failed to relax at %s; the hull is built without it: %s",
            uid, formula, fidelity, error,
        )  # fmt: skip


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
