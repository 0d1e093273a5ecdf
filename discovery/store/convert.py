"""Conversions between records in memory and rows in the store."""

from __future__ import annotations

import logging
from typing import Any

from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from discovery.domain.generation.dedup import dedup_key
from discovery.domain.records import CandidateRecord
from discovery.store.schema import Calculation, Candidate

log = logging.getLogger(__name__)

SYMPREC = 0.1  # Å; loose enough for unrelaxed generated structures


def space_group_number(structure: Structure, symprec: float = SYMPREC) -> int | None:
    """The space group number at `symprec`, or None where spglib cannot find one."""
    try:
        return int(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())
    except Exception as err:  # spglib gives up on some distorted cells; that is not fatal
        log.debug("no space group for %s: %s", structure.formula, err)
        return None


def structure_from_json(data: dict[str, Any] | None) -> Structure:
    """The pymatgen structure stored as JSON; a missing one (a failed calculation's final
    structure) is an error here rather than an AttributeError deep in pymatgen."""
    if data is None:
        raise ValueError("no structure stored (a failed calculation has no final structure)")
    return Structure.from_dict(data)


def candidate_row(
    record: CandidateRecord, campaign_id: int, uid: str, round_index: int, is_reference: bool
) -> Candidate:
    """A new candidate row for the store from a generated record."""
    s = record.structure
    comp = s.composition
    return Candidate(
        campaign_id=campaign_id,
        uid=uid,
        round_index=round_index,
        is_reference=is_reference,
        structure=s.as_dict(),
        formula=comp.formula.replace(" ", ""),
        reduced_formula=comp.reduced_formula,
        chemsys=comp.chemical_system,
        nsites=len(s),
        spacegroup=space_group_number(s),
        origin=record.origin,
        parent=record.parent,
        origin_detail=record.detail,
        dedup_key=dedup_key(s),
        status="reference" if is_reference else "generated",
    )


def calculation_row(
    candidate: Candidate,
    result,
    fidelity: str,
    round_index: int,
    settings_key: str | None = None,
) -> Calculation:
    """A simulators.RelaxResult as a row; failures are rows too."""
    return Calculation(
        settings_key=settings_key,
        candidate_id=candidate.id,
        simulator=result.simulator,
        fidelity=fidelity,
        round_index=round_index,
        ok=bool(result.ok),
        converged=bool(result.converged),
        steps=int(result.steps),
        wall_s=float(result.wall_s),
        energy=result.energy,
        energy_per_atom=result.energy_per_atom,
        forces_max=result.forces_max,
        final_structure=result.structure.as_dict() if result.structure is not None else None,
        error=result.error,
    )
