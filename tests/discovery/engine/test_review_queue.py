"""The store's guarantees and the review queue's novelty rule, on a real SQLite file and on a
real PostgreSQL server (conftest's `store_url`)."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure
from sqlalchemy.exc import IntegrityError

from discovery.domain.records import CandidateRecord
from discovery.engine.review_queue import ReviewError, decide, fill_queue, history
from discovery.store import Calculation, Campaign, Database, HullResult
from discovery.store.convert import candidate_row
from simulators import RelaxResult


def _structure(a=3.6, species=("Cu", "Au")):
    return Structure(Lattice.cubic(a), list(species), [[0, 0, 0], [0.5, 0.5, 0.5]])


def _result(structure, energy=-4.0):
    return RelaxResult("emt", structure, energy * len(structure), energy, 0.01, None, True, 5, 0.1)


@pytest.fixture
def db(store_url):
    db = Database(store_url)
    with db.session() as s:
        s.add(Campaign(name="t", config_yaml=""))
    yield db
    db.dispose()


def _add(db, uid, structure, relaxed, is_ref=False, e_hull=0.0, round_index=0):
    from discovery.store.convert import calculation_row

    rec = CandidateRecord(structure, "reference" if is_ref else "random")
    with db.session() as s:
        cand = candidate_row(rec, 1, uid, -1 if is_ref else round_index, is_ref)
        s.add(cand)
        s.flush()
        s.add(calculation_row(cand, _result(relaxed), "emt", round_index))
        if not is_ref:
            hull = HullResult(
                candidate_id=cand.id,
                fidelity="emt",
                round_index=round_index,
                e_form_per_atom=-0.1,
                e_above_hull=e_hull,
                stable=e_hull <= 0.05,
            )
            s.add(hull)
        return cand.id


def test_wal_mode_is_on(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'campaign.db'}")
    with db.engine.connect() as con:
        assert con.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    db.dispose()


def test_a_second_calculation_for_the_same_candidate_and_fidelity_is_refused(db):
    cid = _add(db, "c1", _structure(), _structure())
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(Calculation(candidate_id=cid, simulator="emt", fidelity="emt", round_index=0,
                          ok=True, converged=True, steps=1, wall_s=0.1))  # fmt: skip


def test_queue_takes_stable_novel_candidates_in_hull_order(db):
    ref = _structure(3.6, ("Cu", "Au"))
    _add(db, "ref-1", ref, ref, is_ref=True)
    # relaxes into the reference (a rescaled copy): stable but not novel
    _add(db, "c-same", _structure(3.9), _structure(3.7), e_hull=0.0)
    # a genuinely different CuAu3 crystal, stable
    cu_au3 = Structure(Lattice.cubic(4.0), ["Cu", "Au", "Au", "Au"],
                       [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])  # fmt: skip
    _add(db, "c-new", cu_au3, cu_au3, e_hull=0.01)
    # relaxes into c-new: a later duplicate of an earlier candidate
    _add(db, "c-dup", cu_au3.copy(), cu_au3.copy(), e_hull=0.01)
    # unstable
    other = Structure(Lattice.cubic(4.0), ["Cu", "Cu", "Cu", "Au"],
                      [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])  # fmt: skip
    _add(db, "c-high", other, other, e_hull=0.3)
    with db.session() as s:
        assert fill_queue(s, 1, "emt", 0, size=5) == 1
    with db.session() as s:  # idempotent: nothing new to add
        assert fill_queue(s, 1, "emt", 0, size=5) == 0
    rec = decide(db, 1, "c-new", "approved", "ada", "ok")
    assert rec.decision == "approved"
    decide(db, 1, "c-new", "rejected", "bob", "changed my mind")
    assert [h.reviewer for h in history(db, 1, "c-new")] == ["ada", "bob"]
    with pytest.raises(ReviewError, match="not in the review queue"):
        decide(db, 1, "c-same", "approved", "ada")
    with pytest.raises(ReviewError, match="decision must be"):
        decide(db, 1, "c-new", "maybe", "ada")
    with pytest.raises(ReviewError, match="reviewer"):
        decide(db, 1, "c-new", "approved", "  ")


def test_the_first_validated_of_two_identical_crystals_is_the_novel_one(db):
    from discovery.engine.review_queue import novel_candidates
    from discovery.store.convert import calculation_row

    crystal = Structure(Lattice.cubic(4.0), ["Cu", "Au", "Au", "Au"],
                        [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])  # fmt: skip
    with db.session() as s:  # generated first (lower id), validated later
        early = candidate_row(CandidateRecord(crystal, "random"), 1, "early", 0, False)
        s.add(early)
    late_id = _add(db, "late", crystal.copy(), crystal.copy(), round_index=1)
    with db.session() as s:
        s.add(calculation_row(early, _result(crystal), "emt", 2))
    with db.session() as s:
        assert novel_candidates(s, 1, "emt") == {late_id}
