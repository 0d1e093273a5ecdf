"""From teacher calculations to training targets: the relaxed formation energy (IS2RE) where
the teacher relaxed a structure, else its single-point formation energy mapped onto the
relaxed scale by a correction fitted, and measured leave-one-out, on the relaxed ones.
Failed and nonsensical labels are discarded and counted."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from discovery.config import PretrainConfig
from discovery.engine.campaign_hull import formation_energies
from discovery.engine.pretraining.synthetic_set import prototype_key
from discovery.engine.pretraining.teacher_labels import relaxed_fidelity, single_point_fidelity
from discovery.engine.replay_set import ReplayEntry
from discovery.store import Calculation, Candidate
from discovery.store.convert import structure_from_json
from discovery.store.queries import validated_pairs

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CORRECTIONS = ("none", "shift", "linear")


@dataclass
class TrainingSet:
    """Structures and targets for the ensemble, with what the data card reports about them;
    `entries` holds each labelled entry (one per uid) for the replay set."""

    structures: list[Any] = field(default_factory=list)
    targets: list[float] = field(default_factory=list)
    uids: list[str] = field(default_factory=list)
    card: dict[str, Any] = field(default_factory=dict)
    entries: list[ReplayEntry] = field(default_factory=list)


def _fit(method: str, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) of y ~ a + b*x for one correction method."""
    if method == "none" or len(x) == 0:
        return 0.0, 1.0
    if method == "shift" or len(x) < 3 or float(np.ptp(x)) < 1e-9:
        return float(np.mean(y - x)), 1.0
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def leave_one_out_mae(method: str, x: np.ndarray, y: np.ndarray) -> float | None:
    """Mean absolute error of each relaxed label predicted from its single point by the
    correction fitted on all the others: the label error of a structure that was not relaxed."""
    if len(x) < 2:
        return None
    errors = []
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        a, b = _fit(method, x[keep], y[keep])
        errors.append(abs(a + b * x[i] - y[i]))
    return float(np.mean(errors))


def measure_corrections(x: np.ndarray, y: np.ndarray, wanted: str) -> dict[str, Any]:
    """Every correction's leave-one-out error, the one used (`wanted`, or the lowest error
    for auto) and its coefficients fitted on all relaxed structures."""
    errors = {m: leave_one_out_mae(m, x, y) for m in CORRECTIONS}
    if wanted == "auto":
        measured = {m: e for m, e in errors.items() if e is not None}
        chosen = min(measured, key=lambda m: measured[m]) if measured else "none"
    else:
        chosen = wanted
    a, b = _fit(chosen, x, y)
    return {
        "method": chosen,
        "asked": wanted,
        "intercept": a,
        "slope": b,
        "n_pairs": len(x),
        "loo_mae": errors,
        "mean_relaxation_drop": float(np.mean(x - y)) if len(x) else None,
    }


# Fewer relaxed pairs than this and a generator's correction is not measured on its own.
MIN_GENERATOR_PAIRS = 5


def generator_corrections(
    pairs: dict[str, tuple[np.ndarray, np.ndarray]],
    pooled: dict[str, Any],
    wanted: str,
    max_error: float | None,
) -> dict[str, dict[str, Any]]:
    """Per generator (origin): the correction its single points take, measured on its own
    relaxed pairs when it has enough (else the pooled one), and `use`: whether its corrected
    single points are accurate enough (leave-one-out MAE within `max_error`) to train on."""
    out: dict[str, dict[str, Any]] = {}
    for origin, (x, y) in sorted(pairs.items()):
        own = len(x) >= MIN_GENERATOR_PAIRS
        corr = measure_corrections(x, y, wanted) if own else dict(pooled)
        error = corr["loo_mae"].get(corr["method"])
        corr["own"] = own
        corr["use"] = max_error is None or (error is not None and error <= max_error)
        out[origin] = corr
    return out


def _wall_means(session: Session, campaign_id: int) -> dict[str, float]:
    rows = session.execute(
        select(Calculation.fidelity, Calculation.wall_s)
        .join(Candidate, Candidate.id == Calculation.candidate_id)
        .where(Candidate.campaign_id == campaign_id, Candidate.is_reference.is_(False))
    ).all()
    by: dict[str, list[float]] = {}
    for fidelity, wall in rows:
        by.setdefault(fidelity, []).append(wall)
    return {k: float(np.mean(v)) for k, v in by.items()}


def training_set(session: Session, campaign_id: int, config: PretrainConfig) -> TrainingSet:
    """Every usable label as a target; the data card's numbers on sizes, discards and the
    single-point correction."""
    scheme = config.teacher.energy_scheme
    limit = config.labels.max_abs_e_form
    relax_fid, single_fid = relaxed_fidelity(config), single_point_fidelity(config)
    relaxed = validated_pairs(session, campaign_id, relax_fid)
    refs = [(c, k) for c, k in relaxed if c.is_reference]
    singles = [(c, k) for c, k in validated_pairs(session, campaign_id, single_fid)]
    e_relaxed = formation_energies(relaxed, scheme)
    e_single = formation_energies(refs + singles, scheme)
    calc_relaxed = {c.id: k for c, k in relaxed}

    discarded: Counter = Counter()
    failed = Counter(
        session.scalars(
            select(Calculation.fidelity)
            .join(Candidate, Candidate.id == Calculation.candidate_id)
            .where(Candidate.campaign_id == campaign_id, Calculation.ok.is_(False))
        )
    )

    def sane(value: float | None, why: str) -> bool:
        if value is None:
            return False
        if not np.isfinite(value) or abs(value) > limit:
            discarded[why] += 1
            return False
        return True

    cands = list(
        session.scalars(
            select(Candidate).where(Candidate.campaign_id == campaign_id).order_by(Candidate.id)
        )
    )
    good_relaxed = {
        c.id: e_relaxed[c.id] for c in cands if sane(e_relaxed.get(c.id), "relaxed_e_form")
    }
    good_single = {
        c.id: e_single[c.id]
        for c in cands
        if not c.is_reference and sane(e_single.get(c.id), "single_point_e_form")
    }
    both = [cid for cid in good_relaxed if cid in good_single]
    x = np.array([good_single[cid] for cid in both])
    y = np.array([good_relaxed[cid] for cid in both])
    plan = config.labels
    correction = measure_corrections(x, y, plan.correction)
    origin_of = {c.id: c.origin for c in cands}
    per_generator: dict[str, dict[str, Any]] = {}
    if plan.per_generator or plan.max_label_error is not None:
        by_origin = {
            origin: (
                np.array([good_single[cid] for cid in both if origin_of[cid] == origin]),
                np.array([good_relaxed[cid] for cid in both if origin_of[cid] == origin]),
            )
            for origin in sorted({origin_of[cid] for cid in good_single})
        }
        per_generator = generator_corrections(
            by_origin if plan.per_generator else {o: (x, y) for o in by_origin},
            correction,
            plan.correction,
            plan.max_label_error,
        )

    def corrected(cid: int) -> float | None:
        """The single point on the relaxed scale; None where its generator's are too far off."""
        corr = per_generator.get(origin_of[cid], {"use": True, **correction})
        if not corr["use"]:
            discarded[f"inaccurate_single_point_{origin_of[cid]}"] += 1
            return None
        return corr["intercept"] + corr["slope"] * good_single[cid]

    out = TrainingSet()
    kinds: Counter = Counter()
    by_chemsys: Counter = Counter()
    by_generator: Counter = Counter()
    by_prototype: Counter = Counter()
    elements: set[str] = set()
    for cand in cands:
        if cand.id in good_relaxed:
            target, kind = good_relaxed[cand.id], "relaxed"
        elif cand.id in good_single and (value := corrected(cand.id)) is not None:
            target, kind = value, "single_point_corrected"
        else:
            continue
        kind = "reference" if cand.is_reference else kind
        kinds[kind] += 1
        out.structures.append(structure_from_json(cand.structure))
        out.targets.append(target)
        out.uids.append(cand.uid)
        final = calc_relaxed[cand.id].final_structure if cand.id in good_relaxed else None
        if final is not None:
            # The relaxed geometry with the same label: the screen meets structures near it.
            out.structures.append(structure_from_json(final))
            out.targets.append(target)
        out.entries.append(
            ReplayEntry(cand.uid, cand.chemsys, kind, float(target), cand.structure, final)
        )
        by_chemsys[cand.chemsys] += 1
        by_generator[cand.origin] += 1
        if not cand.is_reference:
            by_prototype[prototype_key(cand.origin, cand.parent)] += 1
        elements.update(cand.chemsys.split("-"))
    walls = _wall_means(session, campaign_id)
    single_wall, relax_wall = walls.get(single_fid), walls.get(relax_fid)
    out.card = {
        "entries": len(out.uids),
        "training_structures": len(out.structures),
        "label_kinds": dict(kinds),
        "failed_by_fidelity": dict(failed),
        "discarded_nonsensical": dict(discarded),
        "elements": sorted(elements),
        "chemical_systems": dict(sorted(by_chemsys.items())),
        "generators": dict(sorted(by_generator.items())),
        "prototypes": dict(sorted(by_prototype.items())),
        "correction": correction,
        "correction_per_generator": per_generator,
        "cost": {
            "single_point_mean_s": single_wall,
            "relaxation_mean_s": relax_wall,
            "relax_over_single": (relax_wall / single_wall) if single_wall and relax_wall else None,
        },
        "target_mean": float(np.mean(out.targets)) if out.targets else None,
        "target_std": float(np.std(out.targets)) if out.targets else None,
    }
    return out
