"""Several known-material sources merged into one list, duplicates found by structure match.

Rules:
- Sources are in priority order, and so are the phases within each: the first phase of a
  structure wins; a later duplicate is dropped, and ``source:id`` of every dropped duplicate
  is listed in the winner's ``provenance["also"]``.
- A winner without an energy (a structure from a folder or a CIF) takes the energy and scheme
  of its first duplicate that has one, recorded as ``provenance["energy_from"]``: the user's
  own file of a phase must not remove that phase from the hull. The structure stays the
  winner's (the energies of two matching structures differ by their relaxation, far below
  the hull's resolution). A winner with an energy keeps it, even where a later duplicate's
  scheme or value differs.
- Duplicates are found with the novelty index (`discovery.domain.known.novelty`): the same
  matcher, reduced-formula buckets and volume-per-atom band.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from discovery.domain.known.novelty import NoveltyIndex
from discovery.domain.known.phase import KnownPhase

log = logging.getLogger(__name__)


def phase_label(phase: KnownPhase) -> str:
    """``source:id``, how a phase is named in another phase's provenance."""
    return f"{phase.source}:{phase.id}"


def merge_phases(sources: Sequence[Sequence[KnownPhase]]) -> list[KnownPhase]:
    """One phase per distinct structure, earlier sources (and earlier phases) first; see the
    module's rules for what a winner takes from its duplicates."""
    index = NoveltyIndex()
    winners: list[KnownPhase] = []
    position: dict[int, int] = {}  # id(winner as added to the index) -> index in winners
    dropped = 0
    for phases in sources:
        for phase in phases:
            match = index.match(phase.structure)
            if match is None:
                position[id(phase)] = len(winners)
                winners.append(phase)
                index.add(phase)
                continue
            dropped += 1
            i = position[id(match)]
            winner = winners[i]
            provenance = dict(winner.provenance)
            provenance["also"] = [*provenance.get("also", []), phase_label(phase)]
            energy, scheme = winner.energy_per_atom, winner.energy_scheme
            if energy is None and phase.energy_per_atom is not None:
                energy, scheme = phase.energy_per_atom, phase.energy_scheme
                provenance["energy_from"] = phase_label(phase)
            winners[i] = dataclasses.replace(
                winner, energy_per_atom=energy, energy_scheme=scheme, provenance=provenance
            )
    if dropped:
        log.info("known phases merged: %d kept, %d duplicates dropped", len(winners), dropped)
    return winners
