"""Candidate generation: generators yield records; filters and de-duplication decide what stays."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from pydantic import BaseModel
from pymatgen.core import Composition

from discovery.config import CampaignConfig
from discovery.domain.generation.compositions import enumerate_compositions
from discovery.domain.generation.dedup import Deduplicator
from discovery.domain.generation.filters import rejection_reason
from discovery.domain.generation.partial import Parent, PartialSubstitutionGenerator
from discovery.domain.generation.random_search import RandomSearchGenerator
from discovery.domain.generation.substitution import (
    SubstitutionGenerator,
    UserPrototype,
    enumerate_substitutions,
    user_prototype,
)
from discovery.domain.generation.user_structures import load_structures
from discovery.domain.records import CandidateRecord

log = logging.getLogger(__name__)


class Generator(Protocol):
    name: str

    def generate(self, rng: np.random.Generator): ...


@dataclass
class GenerationStats:
    drawn: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason -> count
    widened: Counter = field(default_factory=Counter)  # generator name -> widening steps

    def as_metrics(self) -> dict[str, int]:
        out = {"generated": self.drawn, "unique": self.accepted}
        out.update({f"rejected_{k.replace(' ', '_')}": v for k, v in self.rejected.items()})
        out.update({f"widened_{k}": v for k, v in self.widened.items()})
        return out


def _user_prototypes(config: CampaignConfig) -> list[UserPrototype]:
    gen = config.generation
    return [user_prototype(n, s) for n, s in load_structures(gen.structures, gen.order_disordered)]


def _partial_parents(
    elements: tuple[str, ...], config: CampaignConfig, user: list[UserPrototype]
) -> list[Parent]:
    """Fully substituted prototypes of the chemical system, and the user's structures that
    already lie within it."""
    gen = config.generation
    subs = enumerate_substitutions(
        elements, gen.substitution.threshold, gen.substitution.prototypes, user
    )
    parents = [
        Parent(rec.parent, rec.structure, {"map": rec.detail.get("map", {})})
        for _, rec in subs
        if rec.parent is not None  # always set: a substitution names its prototype
    ]
    for u in user:
        if {el.symbol for el in u.structure.composition.elements} <= set(elements):
            s = u.structure.copy()
            s.remove_oxidation_states()
            parents.append(Parent(u.name, s, {"file": u.name}))
    return parents


# Scores compositions before any structure is built (lower = more promising).
CompositionRanker = Callable[[list[Composition]], list[float]]


def _ranked(comps: list[Composition], rank: CompositionRanker, keep: int) -> list[Composition]:
    scores = rank(comps)
    order = sorted(range(len(comps)), key=lambda i: (scores[i], comps[i].reduced_formula))
    kept = [comps[i] for i in order[:keep]]
    log.info(
        "compositions ranked by the model: kept %d of %d, best %s",
        len(kept),
        len(comps),
        ", ".join(f"{comps[i].reduced_formula} ({scores[i]:+.3f})" for i in order[:5]),
    )
    return kept


def build_generators(
    config: CampaignConfig, rank: CompositionRanker | None = None
) -> list[tuple[Generator, int]]:
    """(generator, per-round budget) for every enabled generator of the config; `rank`, when
    given, orders and trims the compositions random search builds structures for."""
    gen_cfg = config.generation
    out: list[tuple[Generator, int]] = []
    n_sys = len(config.chemical_systems)
    user = _user_prototypes(config) if gen_cfg.structures else []
    if gen_cfg.substitution.enabled and gen_cfg.substitution.budget:
        for chemsys in config.chemical_systems:
            sub = SubstitutionGenerator(
                tuple(chemsys.split("-")),
                gen_cfg.substitution.threshold,
                gen_cfg.substitution.prototypes,
                user,
            )
            out.append((sub, gen_cfg.substitution.budget // n_sys))
    if gen_cfg.partial.enabled and gen_cfg.partial.budget:
        for chemsys in config.chemical_systems:
            elements = tuple(chemsys.split("-"))
            saps = PartialSubstitutionGenerator(
                _partial_parents(elements, config, user),
                elements,
                gen_cfg.substitution.threshold,
                gen_cfg.partial.max_parent_sites,
                gen_cfg.partial.max_orderings,
            )
            out.append((saps, gen_cfg.partial.budget // n_sys))
    if gen_cfg.random.enabled and gen_cfg.random.budget:
        comps = []
        for chemsys in config.chemical_systems:
            comps += enumerate_compositions(
                tuple(chemsys.split("-")),
                gen_cfg.compositions.max_atoms,
                gen_cfg.compositions.charge_balanced,
                gen_cfg.compositions.include_subsystems,
            )
        unique = list({c.reduced_formula: c for c in comps}.values())
        if rank is not None and unique:
            unique = _ranked(unique, rank, gen_cfg.compositions.keep_top)
        rnd = RandomSearchGenerator(
            unique,
            gen_cfg.random.max_formula_units,
            gen_cfg.random.space_groups,
            gen_cfg.max_sites,
            gen_cfg.random.attempts_per_structure,
            gen_cfg.random.per_composition,
        )
        out.append((rnd, gen_cfg.random.budget))
    return out


def widened(config: CampaignConfig, kind: str, step: int) -> tuple[CampaignConfig, str] | None:
    """The config with generator `kind` widened by `step` steps (see WideningConfig) and what
    changed, or None when the limits allow nothing wider than step - 1 did."""
    gen = config.generation
    w = gen.widening
    if not w.enabled or step > w.max_steps:
        return None

    def threshold(k: int) -> float:
        return max(
            gen.substitution.threshold / 10**k, min(w.min_threshold, gen.substitution.threshold)
        )

    update: dict[str, BaseModel] = {}
    if kind in ("substitution", "partial") and threshold(step) < threshold(step - 1):
        update["substitution"] = gen.substitution.model_copy(update={"threshold": threshold(step)})
    if kind == "partial":
        base = gen.partial.max_orderings
        orderings = max(base, min(base * 2**step, w.max_orderings))
        if orderings > max(base, min(base * 2 ** (step - 1), w.max_orderings)):
            update["partial"] = gen.partial.model_copy(update={"max_orderings": orderings})
    if kind == "random":
        base = gen.random.max_formula_units
        units = max(base, min(base + step, w.max_formula_units))
        if units > max(base, min(base + step - 1, w.max_formula_units)):
            update["random"] = gen.random.model_copy(update={"max_formula_units": units})
    if not update:
        return None
    done = ", ".join(
        f"{section}.{key} {getattr(getattr(gen, section), key)} -> {value}"
        for section, sub in update.items()
        for key, value in sub.model_dump().items()
        if value != getattr(getattr(gen, section), key)
    )
    return config.model_copy(update={"generation": gen.model_copy(update=update)}), done


def generate_candidates(
    config: CampaignConfig,
    rng: np.random.Generator,
    seen: Deduplicator,
    progress=None,
    rank: CompositionRanker | None = None,
) -> tuple[list[CandidateRecord], GenerationStats]:
    """New, valid, unique candidates for one round; `seen` is updated with what is kept.

    A generator whose pool runs dry before its budget is filled is rebuilt wider, step by
    step within `generation.widening`, and draws the rest of its budget from the wider pool
    (whose first draws are mostly the duplicates it already had)."""
    stats = GenerationStats()
    kept: list[CandidateRecord] = []
    slots = build_generators(config, rank)
    for index, (generator, budget) in enumerate(slots):
        taken = _draw(generator, budget, config, rng, seen, stats, kept, progress)
        step = 0
        while taken < budget:
            step += 1
            wider = widened(config, generator.name, step)
            if wider is None:
                log.info(
                    "%s: pool ran dry at %d of budget %d; nothing wider within the limits",
                    generator.name, taken, budget,
                )  # fmt: skip
                break
            wider_config, change = wider
            log.info(
                "%s: pool ran dry at %d of budget %d; widening (step %d): %s",
                generator.name, taken, budget, step, change,
            )  # fmt: skip
            stats.widened[generator.name] += 1
            generator = build_generators(wider_config, rank)[index][0]
            taken += _draw(generator, budget - taken, config, rng, seen, stats, kept, progress)
        log.info("%s: kept %d of budget %d", generator.name, taken, budget)
    if stats.rejected:
        log.info("rejected: %s", dict(stats.rejected))
    return kept, stats


def _draw(generator, budget, config, rng, seen, stats, kept, progress) -> int:
    """Up to `budget` new, valid, unique records of one generator into `kept`."""
    taken = 0
    # Bound the draws so a generator that only repeats itself cannot stall a round.
    max_draws = 20 * budget + 50
    gen = config.generation
    for n, record in enumerate(generator.generate(rng)):
        if n >= max_draws or taken >= budget:
            break
        stats.drawn += 1
        reason = rejection_reason(
            record.structure, gen.min_distance, gen.max_sites, gen.density_range
        )
        if reason is None and not seen.add_if_new(record.structure):
            reason = "duplicate"
        if reason is not None:
            stats.rejected[reason] += 1
            continue
        kept.append(record)
        taken += 1
        stats.accepted += 1
        if progress is not None:
            progress.advance()
    return taken
