"""Candidate generation: generators yield records; filters and de-duplication decide what stays."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from discovery.config import CampaignConfig
from discovery.generation.compositions import enumerate_compositions
from discovery.generation.dedup import Deduplicator
from discovery.generation.filters import rejection_reason
from discovery.generation.random_search import RandomSearchGenerator
from discovery.generation.substitution import SubstitutionGenerator
from discovery.records import CandidateRecord

log = logging.getLogger(__name__)


class Generator(Protocol):
    name: str

    def generate(self, rng: np.random.Generator): ...


@dataclass
class GenerationStats:
    drawn: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason -> count

    def as_metrics(self) -> dict[str, int]:
        out = {"generated": self.drawn, "unique": self.accepted}
        out.update({f"rejected_{k.replace(' ', '_')}": v for k, v in self.rejected.items()})
        return out


def build_generators(config: CampaignConfig) -> list[tuple[Generator, int]]:
    """(generator, per-round budget) for every enabled generator of the config."""
    gen_cfg = config.generation
    out: list[tuple[Generator, int]] = []
    if gen_cfg.substitution.enabled and gen_cfg.substitution.budget:
        for chemsys in config.chemical_systems:
            sub = SubstitutionGenerator(
                tuple(chemsys.split("-")),
                gen_cfg.substitution.threshold,
                gen_cfg.substitution.prototypes,
            )
            out.append((sub, gen_cfg.substitution.budget // len(config.chemical_systems)))
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
        rnd = RandomSearchGenerator(
            unique,
            gen_cfg.random.max_formula_units,
            gen_cfg.random.space_groups,
            gen_cfg.max_sites,
            gen_cfg.random.attempts_per_structure,
        )
        out.append((rnd, gen_cfg.random.budget))
    return out


def generate_candidates(
    config: CampaignConfig,
    rng: np.random.Generator,
    seen: Deduplicator,
    progress=None,
) -> tuple[list[CandidateRecord], GenerationStats]:
    """New, valid, unique candidates for one round; `seen` is updated with what is kept."""
    stats = GenerationStats()
    kept: list[CandidateRecord] = []
    for generator, budget in build_generators(config):
        taken = 0
        # Bound the draws so a generator that only repeats itself cannot stall a round.
        max_draws = 20 * budget + 50
        for n, record in enumerate(generator.generate(rng)):
            if n >= max_draws or taken >= budget:
                break
            stats.drawn += 1
            reason = rejection_reason(
                record.structure, config.generation.min_distance, config.generation.max_sites
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
        log.info("%s: kept %d of budget %d", generator.name, taken, budget)
    if stats.rejected:
        log.info("rejected: %s", dict(stats.rejected))
    return kept, stats
