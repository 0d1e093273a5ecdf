"""AIRSS-like random symmetric crystals from pyxtal for enumerated compositions."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator

import numpy as np
from pymatgen.core import Composition
from pyxtal import pyxtal

from discovery.domain.records import CandidateRecord

log = logging.getLogger(__name__)


class RandomSearchGenerator:
    """Draws a composition, a number of formula units and a space group, then asks pyxtal for a
    random crystal with that symmetry (pyxtal places atoms on compatible Wyckoff positions and
    sets the volume from atomic radii)."""

    name = "random"

    def __init__(
        self,
        compositions: list[Composition],
        max_formula_units: int,
        space_groups: tuple[int, int],
        max_sites: int,
        attempts: int,
        per_composition: int = 0,
    ):
        self.compositions = compositions
        self.max_formula_units = max_formula_units
        self.space_groups = space_groups
        self.max_sites = max_sites
        self.attempts = attempts
        self.per_composition = per_composition

    def _compositions(self, usable: list[Composition], rng: np.random.Generator):
        """A random composition per draw; or, with `per_composition` n (GNoME: 100), n draws
        of each composition in turn, in a seeded order."""
        if self.per_composition <= 0:
            while True:
                yield usable[int(rng.integers(len(usable)))]
        for i in rng.permutation(len(usable)):
            for _ in range(self.per_composition):
                yield usable[int(i)]

    def generate(self, rng: np.random.Generator) -> Iterator[CandidateRecord]:
        usable = [c for c in self.compositions if c.num_atoms <= self.max_sites]
        if not usable:
            log.warning("random search: no composition fits in %d sites", self.max_sites)
            return
        for comp in self._compositions(usable, rng):
            z_max = max(1, min(self.max_formula_units, int(self.max_sites // comp.num_atoms)))
            z = int(rng.integers(1, z_max + 1))
            record = self._one(comp, z, rng)
            if record is not None:
                yield record

    def _one(self, comp: Composition, z: int, rng: np.random.Generator) -> CandidateRecord | None:
        species = [el.symbol for el in comp.elements]
        counts = [int(comp[el]) * z for el in comp.elements]
        lo, hi = self.space_groups
        for _ in range(self.attempts):
            group = int(rng.integers(lo, hi + 1))
            crystal = pyxtal()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    crystal.from_random(
                        3, group, species, counts, random_state=int(rng.integers(2**31))
                    )
            except Exception as err:  # pyxtal signals incompatible multiplicities by raising
                log.debug("pyxtal %s in %d: %s", comp.reduced_formula, group, err)
                continue
            if not crystal.valid:
                continue
            structure = crystal.to_pymatgen()
            return CandidateRecord(
                structure,
                "random",
                None,
                {"space_group": group, "formula_units": z, "composition": comp.reduced_formula},
            )
        return None
