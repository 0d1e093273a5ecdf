"""Ion substitution on prototype structures, scored by pymatgen's data-mined probabilities.

For a prototype with k distinct species and a chemical system, every injective map of its
species onto k elements of the system is a candidate substitution. Ionic prototypes keep a
map only when the new composition is charge-neutral with the chosen oxidation states and the
product of conditional substitution probabilities (Hautier et al. 2011, the table GNoME also
used) reaches the threshold. Metallic prototypes map neutral species freely.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from pymatgen.analysis.structure_prediction.substitution_probability import (
    SubstitutionProbability,
)
from pymatgen.core import Element, Species, Structure

from discovery.domain.generation.prototypes import prototype_structure, prototypes
from discovery.domain.records import CandidateRecord

log = logging.getLogger(__name__)


@cache
def _probability_table() -> SubstitutionProbability:
    return SubstitutionProbability()


def _ions_of(element: str) -> list[Species]:
    return [s for s in _probability_table().species if s.symbol == element]


def _radius(sp: Species | Element) -> float:
    if isinstance(sp, Species) and sp.oxi_state:
        with warnings.catch_warnings():
            # pymatgen warns when it falls back to low-spin radii; either is fine for a start
            warnings.simplefilter("ignore")
            r = sp.ionic_radius
        if r:
            return float(r)
    el = sp.element if isinstance(sp, Species) else sp
    return float(el.atomic_radius or el.atomic_radius_calculated or 1.5)


def _site_species(structure: Structure) -> list:
    return [site.specie for site in structure]


def substitute(proto_structure: Structure, mapping: dict, scale_volume: bool = True) -> Structure:
    """Replace species per `mapping` and rescale the volume by the cube of the radius ratio."""
    old = _site_species(proto_structure)
    new_species = [mapping[sp] for sp in old]
    s = Structure(proto_structure.lattice, new_species, proto_structure.frac_coords)
    if scale_volume:
        ratio = sum(_radius(n) ** 3 for n in new_species) / sum(_radius(o) ** 3 for o in old)
        s.scale_lattice(proto_structure.volume * ratio)
    s.remove_oxidation_states()
    return s


def _cond_prob(table: SubstitutionProbability, new: Species, old: Species) -> float:
    """P(new replaces old); 0 for a species the table never saw (it has no prior)."""
    try:
        return float(table.cond_prob(new, old))
    except ZeroDivisionError:
        return 0.0


def _is_neutral(structure: Structure, mapping: dict) -> bool:
    charge = sum(float(getattr(mapping[site.specie], "oxi_state", 0) or 0) for site in structure)
    return abs(charge) < 1e-6


@dataclass(frozen=True)
class UserPrototype:
    """A user-supplied structure used like a built-in prototype."""

    name: str
    structure: Structure  # with guessed oxidation states when it is ionic

    @property
    def ionic(self) -> bool:
        return any(getattr(sp, "oxi_state", 0) for sp in self.structure.species)


def user_prototype(name: str, structure: Structure) -> UserPrototype:
    """Oxidation states are kept when the file has them and guessed when it has none; a
    structure with no charge-neutral guess (an intermetallic) stays neutral."""
    s = structure.copy()
    if not any(getattr(sp, "oxi_state", None) for sp in s.species):
        guesses = s.composition.oxi_state_guesses(max_sites=-20)
        if guesses and any(abs(v) > 1e-6 for v in guesses[0].values()):
            if all(float(v).is_integer() for v in guesses[0].values()):
                s.add_oxidation_state_by_element(guesses[0])
            else:
                # mixed valence: one integer state per site, charge-balanced as a whole
                s.add_oxidation_state_by_guess()
    return UserPrototype(name, s)


def enumerate_substitutions(
    elements: tuple[str, ...],
    threshold: float,
    names: list[str] | None = None,
    user: Sequence[UserPrototype] = (),
) -> list[tuple[float, CandidateRecord]]:
    """All allowed substitutions of the prototypes (built-in `names`, null = all, and the
    user's) into `elements`, with their probability."""
    table = _probability_table()
    out: list[tuple[float, CandidateRecord]] = []
    sources = [(p.name, p.ionic, prototype_structure(p.name)) for p in prototypes(names)]
    sources += [(u.name, u.ionic, u.structure) for u in user]
    for name, ionic, base in sources:
        proto_species = sorted(set(_site_species(base)), key=str)
        k = len(proto_species)
        if k < 2 or k > len(elements):
            continue  # elements are references, not candidates
        for targets in itertools.permutations(elements, k):
            out.extend(_maps_for(name, ionic, base, proto_species, targets, table, threshold))
    return out


def _maps_for(name: str, ionic: bool, base, proto_species, targets, table, threshold):
    if not ionic:
        if not all(Element(t).is_metal or Element(t).is_metalloid for t in targets):
            return  # intermetallic structure types say nothing about ionic compounds
        metals = {sp: Element(t) for sp, t in zip(proto_species, targets, strict=True)}
        detail = {str(sp): str(t) for sp, t in metals.items()}
        yield (
            1.0,
            CandidateRecord(substitute(base, metals), "substitution", name, {"map": detail}),
        )
        return
    options = [_ions_of(t) for t in targets]
    for ions in itertools.product(*options):
        mapping = dict(zip(proto_species, ions, strict=True))
        if any(np.sign(a.oxi_state) != np.sign(b.oxi_state) for a, b in mapping.items()):
            continue
        if not _is_neutral(base, mapping):
            continue
        p = float(np.prod([_cond_prob(table, new, old) for old, new in mapping.items()]))
        if p < threshold:
            continue
        detail = {str(a): str(b) for a, b in mapping.items()}
        yield (
            p,
            CandidateRecord(
                substitute(base, mapping),
                "substitution",
                name,
                {"map": detail, "probability": round(p, 6)},
            ),
        )


class SubstitutionGenerator:
    """Yields substituted prototypes in a seeded order weighted by their probability."""

    name = "substitution"

    def __init__(
        self,
        elements: tuple[str, ...],
        threshold: float,
        names: list[str] | None,
        user: Sequence[UserPrototype] = (),
    ):
        self.elements = elements
        self.threshold = threshold
        self.names = names
        self.user = list(user)

    def generate(self, rng: np.random.Generator) -> Iterator[CandidateRecord]:
        pool = enumerate_substitutions(self.elements, self.threshold, self.names, self.user)
        log.info(
            "substitution: %d allowed substitutions for %s", len(pool), "-".join(self.elements)
        )
        if not pool:
            return
        # Sampling without replacement, proportional to probability, keeps likely
        # substitutions first while giving rare ones a chance in early rounds.
        weights = np.array([max(p, 1e-12) for p, _ in pool])
        keys = rng.random(len(pool)) ** (1.0 / weights)
        for i in np.argsort(-keys):
            yield pool[i][1]
