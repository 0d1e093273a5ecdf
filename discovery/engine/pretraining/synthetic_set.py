"""The synthetic structure set: the campaign's generators run over every chemical system of a
pretraining config, de-duplicated across systems, balanced by chemistry and prototype, and a
seeded subset planned for full relaxation."""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from discovery.config import CampaignConfig, PretrainConfig
from discovery.domain.generation.dedup import Deduplicator
from discovery.domain.records import CandidateRecord
from discovery.domain.reference_structures import reference_records
from discovery.engine.candidate_generation import generate_candidates

log = logging.getLogger(__name__)

RELAX = "relax"
SINGLE = "single"


@dataclass
class SyntheticSet:
    """Generated structures (each with its label plan in `detail['label_plan']`), the
    elemental references, and what generation and balancing kept and dropped."""

    records: list[CandidateRecord]
    references: list[CandidateRecord]
    stats: dict[str, int] = field(default_factory=dict)


def prototype_key(origin: str, parent: str | None) -> str:
    """What balancing counts as one prototype: generator and parent (random search is one)."""
    if origin == "random" or not parent:
        return origin
    return f"{origin}:{parent}"


def _balanced(records: list[CandidateRecord], config: PretrainConfig, stats: Counter):
    caps = config.balance
    per_chemsys: Counter = Counter()
    per_prototype: Counter = Counter()
    kept = []
    for rec in records:
        chemsys = rec.structure.composition.chemical_system
        key = prototype_key(rec.origin, rec.parent)
        if caps.max_per_chemsys is not None and per_chemsys[chemsys] >= caps.max_per_chemsys:
            stats["dropped_chemsys_cap"] += 1
            continue
        if caps.max_per_prototype is not None and per_prototype[key] >= caps.max_per_prototype:
            stats["dropped_prototype_cap"] += 1
            continue
        per_chemsys[chemsys] += 1
        per_prototype[key] += 1
        kept.append(rec)
    return kept


def _campaign_view(config: PretrainConfig, chemsys: str) -> CampaignConfig:
    """A one-system campaign config with the pretraining's generators: what the campaign's
    generation code takes."""
    return CampaignConfig(
        name=f"{config.name}-{chemsys}",
        chemical_systems=[chemsys],
        seed=config.seed,
        generation=config.generation,
        simulator=config.teacher,
    )


def relax_count(n: int, config: PretrainConfig) -> int:
    """How many of `n` structures the label plan relaxes."""
    plan = config.labels
    return min(n, max(plan.relax_min, math.ceil(plan.relax_fraction * n)))


def generate_set(config: PretrainConfig, task=None) -> SyntheticSet:
    """Every system's candidates (one random stream per system, seeded), unique across
    systems, balanced, each with its label plan; and the elements' reference polymorphs."""
    seen = Deduplicator()
    stats: Counter = Counter()
    records: list[CandidateRecord] = []
    for k, chemsys in enumerate(config.chemical_systems):
        rng = np.random.default_rng([config.seed, k, 1])
        found, gen_stats = generate_candidates(_campaign_view(config, chemsys), rng, seen, task)
        for key, value in gen_stats.as_metrics().items():
            stats[key] += value
        log.info("pretrain set: %s gave %d structures", chemsys, len(found))
        records.extend(found)
    records = _balanced(records, config, stats)
    n_relax = relax_count(len(records), config)
    rng = np.random.default_rng([config.seed, 7])
    relaxed = set(rng.choice(len(records), size=n_relax, replace=False).tolist())
    planned = []
    for i, rec in enumerate(records):
        if i not in relaxed and not config.labels.single_points:
            stats["dropped_not_relaxed"] += 1
            continue
        plan = RELAX if i in relaxed else SINGLE
        planned.append(
            CandidateRecord(
                rec.structure, rec.origin, rec.parent, {**rec.detail, "label_plan": plan}
            )
        )
    references = reference_records(config.elements, [])
    stats["kept"] = len(planned)
    stats["planned_relax"] = n_relax
    return SyntheticSet(planned, references, dict(stats))
