"""The campaign's ensembles: their settings from the config, the latest checkpoint, loading it,
and the training set from the store. Shared by the learn, screen and generate stages and by
tuning."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from discovery.engine.campaign_hull import formation_energies
from discovery.engine.context import CampaignContext
from discovery.store import ModelVersion
from discovery.store.convert import structure_from_json
from discovery.store.queries import validated_pairs

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# A formation energy beyond this is a broken relaxation, not chemistry worth learning.
MAX_ABS_E_FORM = 10.0


def settings_for(kind: str, cutoff: float, hidden: int, layers: int):
    """Model settings of either kind; the composition model has no cutoff."""
    from models import CompositionSettings, GNNSettings

    if kind == "composition":
        return CompositionSettings(hidden=hidden, layers=layers)
    return GNNSettings(cutoff=cutoff, hidden=hidden, layers=layers)


def model_settings(ctx: CampaignContext):
    """The ensemble's architecture, as the config's model section describes it."""
    m = ctx.config.model
    return settings_for(m.kind, m.cutoff, m.hidden, m.layers)


def latest_model(ctx: CampaignContext, session: Session, before_round: int) -> ModelVersion | None:
    """The newest model trained before round `before_round`, or None before the first one."""
    return session.scalars(
        select(ModelVersion)
        .where(ModelVersion.campaign_id == ctx.campaign_id, ModelVersion.round_index < before_round)
        .order_by(ModelVersion.round_index.desc())
    ).first()


def load_ensemble(ctx: CampaignContext, model: ModelVersion):
    """The ensemble saved for `model`, on the configured device; the checkpoint must match the
    config's model settings."""
    from models import Ensemble

    return Ensemble.load(
        ctx.directory / model.checkpoint,
        device=ctx.config.model.device,
        expect=model_settings(ctx),
    )


def training_set(
    session: Session,
    campaign_id: int,
    fidelity: str,
    exclude: frozenset[int] = frozenset(),
    scheme: str = "own",
):
    """Initial and relaxed structure of every validated entry, both labelled with the relaxed
    formation energy: the screen sees unrelaxed candidates, so the model learns that map.
    Candidates in `exclude` (the guards' held-out references) are left out. `scheme` is the
    simulator's formation-energy convention (`formation_energies`)."""
    pairs = validated_pairs(session, campaign_id, fidelity)
    e_form = formation_energies(pairs, scheme)
    structures, targets, ids = [], [], []
    for cand, calc in pairs:
        if cand.id in exclude:
            continue
        y = e_form.get(cand.id)
        if y is None or abs(y) > MAX_ABS_E_FORM:
            continue
        structures.append(structure_from_json(cand.structure))
        targets.append(y)
        if calc.final_structure is not None:
            structures.append(structure_from_json(calc.final_structure))
            targets.append(y)
        ids.append(cand.uid)
    return structures, targets, ids
