"""The numbers behind discovery.domain.collapse_guards, read from the store after each round's
training."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from pymatgen.core import Composition
from sqlalchemy import select

from discovery.domain.collapse_guards import diversity, guard_warnings
from discovery.domain.synthetic_share import share_not_falling
from discovery.engine.campaign_hull import current_hull, formation_energies
from discovery.engine.context import CampaignContext
from discovery.store import Calculation, Candidate, Round
from discovery.store.convert import structure_from_json

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

# A reference this far above the hull is off it (not a rounding artefact of the hull itself).
_OFF_HULL = 1e-6


def holdout_reference_ids(ctx: CampaignContext, session: Session) -> set[int]:
    """References off the hull at this fidelity: real structures the engine did not make,
    kept out of training so the model's error on them tracks drift. Ground states stay in
    training: they anchor formation energies at zero."""
    guards = ctx.config.guards
    if not (guards.enabled and guards.holdout_references):
        return set()
    hull, e_form = current_hull(ctx, session)
    return {
        cand.id
        for cand, _ in ctx.validated_pairs(session)
        if cand.is_reference and cand.id in e_form and hull.point(cand.id).e_above_hull > _OFF_HULL
    }


def _holdout_mae(all_pairs, ensemble, holdout: set[int], scheme: str) -> float | None:
    if not holdout:
        return None
    e_form = formation_energies(all_pairs, scheme)
    pairs = [(c, k) for c, k in all_pairs if c.id in holdout and c.id in e_form]
    if not pairs:
        return None
    structures = [
        structure_from_json(k.final_structure if k.final_structure else c.structure)
        for c, k in pairs
    ]
    preds = ensemble.predict(structures)
    return float(
        np.mean([abs(p.mean - e_form[c.id]) for p, (c, _) in zip(preds, pairs, strict=True)])
    )


def round_guards(
    ctx: CampaignContext,
    session: Session,
    round_index: int,
    ensemble,
    holdout: set[int],
    n_train: int,
    synthetic: tuple[int, float | None] | None = None,
) -> dict:
    """Guard metrics of this round and the warnings they raise (logged here too).
    `synthetic` is this round's (real training entries, synthetic share) when it replayed
    teacher-labelled entries."""
    picked = [
        Composition(formula)
        for formula in session.scalars(
            select(Candidate.formula)
            .join(Calculation, Calculation.candidate_id == Candidate.id)
            .where(
                Candidate.campaign_id == ctx.campaign_id,
                Candidate.is_reference.is_(False),
                Calculation.round_index == round_index,
                Calculation.fidelity == ctx.fidelity,
                Calculation.ok.is_(True),
            )
        )
    ]
    open_systems = set(
        session.scalars(
            select(Candidate.chemsys).where(
                Candidate.campaign_id == ctx.campaign_id, Candidate.status == "generated"
            )
        )
    ) | {c.chemical_system for c in picked}
    pairs = ctx.validated_pairs(session)
    n_real = sum(1 for cand, _ in pairs if cand.is_reference and cand.id not in holdout)
    holdout_mae = _holdout_mae(pairs, ensemble, holdout, ctx.config.simulator.energy_scheme)
    earlier = [
        row.metrics or {}
        for row in session.scalars(
            select(Round)
            .where(Round.campaign_id == ctx.campaign_id, Round.index < round_index)
            .order_by(Round.index)
        )
    ]
    history = [m.get("holdout_mae") for m in earlier]
    div = diversity(picked)
    guards = ctx.config.guards
    warnings = guard_warnings(
        [*history, holdout_mae],
        int(div["chemsys"]),
        len(picked),
        len(open_systems),
        guards.rise_rounds,
        guards.min_chemsys_share,
        guards.min_rise_fraction,
    )
    if synthetic is not None and share_not_falling(
        [(m["train_real"], m.get("synthetic_share")) for m in earlier if "train_real" in m]
        + [synthetic]
    ):
        warnings.append(
            f"the synthetic share of training ({synthetic[1]:.2f}) did not fall while real "
            "entries grew: check model.replay"
        )
    for text in warnings:
        log.warning("round %d: %s", round_index, text)
    return {
        "holdout_mae": holdout_mae,
        "holdout_entries": len(holdout),
        # Training entries the engine did not generate (references), against all of them.
        "train_real_fraction": n_real / n_train if n_train else None,
        "validated_chemsys": div["chemsys"],
        "validated_chemsys_entropy": div["chemsys_entropy"],
        "validated_elements": div["elements"],
        "open_chemsys": len(open_systems),
        "guard_warnings": warnings,
    }
