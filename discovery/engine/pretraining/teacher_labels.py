"""The teacher labels the synthetic set, one committed calculation row per structure, so a
killed run resumes without labelling anything twice: the elemental references are relaxed
first (formation energies need them), then every structure gets a single point, then the
planned subset is relaxed.

Single points run in this process: one teacher call each, cheaper than shipping the
structure to a worker. Relaxations go to the configured executor (a local pool, Dask
workers), or relax together in batches when the teacher is batched."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from discovery.config import PretrainConfig
from discovery.engine import faults
from discovery.engine.executors import Executor, cached_simulator, spec_for
from discovery.engine.pretraining.synthetic_set import RELAX
from discovery.store import Calculation, Candidate, Database
from discovery.store.convert import calculation_row, structure_from_json

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

SINGLE_POINT_SUFFIX = ":single"


def relaxed_fidelity(config: PretrainConfig) -> str:
    """The fidelity label of the teacher's relaxations."""
    return config.teacher.fidelity


def single_point_fidelity(config: PretrainConfig) -> str:
    """The fidelity label of the teacher's single points."""
    return config.teacher.fidelity + SINGLE_POINT_SUFFIX


def label_count(db: Database, campaign_id: int) -> int:
    """Teacher calculations committed so far (failed ones included)."""
    with db.session() as session:
        count = session.scalar(
            select(func.count(Calculation.id))
            .join(Candidate, Candidate.id == Calculation.candidate_id)
            .where(Candidate.campaign_id == campaign_id)
        )
        return int(count or 0)


def _pending(db: Database, campaign_id: int, fidelity: str, wanted: Callable[[Candidate], bool]):
    with db.session() as session:
        done = select(Calculation.candidate_id).where(Calculation.fidelity == fidelity)
        rows = session.scalars(
            select(Candidate)
            .where(Candidate.campaign_id == campaign_id, Candidate.id.not_in(done))
            .order_by(Candidate.id)
        )
        return [c for c in rows if wanted(c)]


def _is_relaxed(cand: Candidate) -> bool:
    return cand.is_reference or (cand.origin_detail or {}).get("label_plan") == RELAX


def planned_labels(db: Database, campaign_id: int, config: PretrainConfig) -> int:
    """Teacher calculations the plan asks for in all (the progress bar's total)."""
    with db.session() as session:
        cands = list(session.scalars(select(Candidate).where(Candidate.campaign_id == campaign_id)))
    singles = sum(not c.is_reference for c in cands) if config.labels.single_points else 0
    return singles + sum(_is_relaxed(c) for c in cands)


def _commit(db: Database, cand_id: int, result, fidelity: str, key: str) -> None:
    with db.session() as session:
        cand = session.get_one(Candidate, cand_id)
        session.add(calculation_row(cand, result, fidelity, 0, key))
        if not result.ok:
            log.warning("%s (%s) failed at %s: %s", cand.uid, cand.formula, fidelity, result.error)
    faults.point("labelled", 0)


def label_set(
    db: Database, campaign_id: int, config: PretrainConfig, executor: Callable[[], Executor], task
) -> int:
    """Label every structure the plan asks for and has no label yet; the number labelled now."""
    teacher = config.teacher
    n = 0
    relax_fid, single_fid = relaxed_fidelity(config), single_point_fidelity(config)
    refs = _pending(db, campaign_id, relax_fid, lambda c: c.is_reference)
    n += _relax(db, refs, config, executor, relax_fid, task)
    if config.labels.single_points:
        spec = spec_for(teacher, relax_cell=teacher.relax_cell)
        simulator = cached_simulator(spec)
        key = spec.settings_key()
        for cand in _pending(db, campaign_id, single_fid, lambda c: not c.is_reference):
            result = simulator.single_point(structure_from_json(cand.structure))
            _commit(db, cand.id, result, single_fid, key)
            n += 1
            task.advance()
    subset = _pending(db, campaign_id, relax_fid, lambda c: _is_relaxed(c) and not c.is_reference)
    n += _relax(db, subset, config, executor, relax_fid, task)
    return n


def _relax(db, cands: list[Candidate], config, executor, fidelity: str, task) -> int:
    """Relax `cands` with the teacher, committing each result as it arrives; molecules in a box
    keep their cell."""
    teacher = config.teacher
    n = 0
    for relax_cell in (True, False):
        group = [c for c in cands if bool((c.origin_detail or {}).get("fixed_cell")) != relax_cell]
        if not group:
            continue
        structures = [structure_from_json(c.structure) for c in group]
        spec = spec_for(teacher, relax_cell and teacher.relax_cell)
        if teacher.batched:
            results = cached_simulator(spec).relax_as_completed(
                structures, True, teacher.batch_size
            )
        else:
            results = executor().relax_as_completed(spec, structures)
        key = spec.settings_key()
        for index, result in results:
            _commit(db, group[index].id, result, fidelity, key)
            n += 1
            task.advance()
    return n
