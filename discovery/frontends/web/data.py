"""Read-only views of the store for the web pages. Every call reads the store afresh: the
CLI and a running campaign write to the same store, so nothing is cached in the server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pymatgen.core import Composition, Structure
from sqlalchemy import func, select
from sqlalchemy.orm import defer

from discovery.domain.review_warnings import review_warnings
from discovery.engine.campaign_directory import OpenCampaign
from discovery.engine.review_queue import history
from discovery.frontends.web.phase_diagram_plot import Marked, PhasePoint
from discovery.store import (
    Calculation,
    Candidate,
    HullResult,
    ModelVersion,
    Prediction,
    ReviewItem,
    Round,
)
from discovery.store.convert import space_group_number, structure_from_json
from discovery.store.queries import deciding_hull_results

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# column -> header of the candidate table; every column sorts
TABLE_COLUMNS = {
    "uid": "id",
    "formula": "formula",
    "chemsys": "system",
    "round": "round",
    "status": "status",
    "review": "review",
    "e_hull_pred": "pred. E_hull",
    "e_form_std": "uncertainty",
    "e_above_hull": "sim. E_hull",
    "fidelity": "decided by",
    "novelty": "novelty",
    "spacegroup": "space group",
    "origin": "origin",
}


def candidate_rows(camp: OpenCampaign) -> list[dict[str, Any]]:
    """One row per generated candidate (references excluded) with its latest prediction, its
    latest hull distance on the highest rung of the fidelity ladder that computed it (named
    in `fidelity`) and its place in the review queue."""
    with camp.db.session() as session:
        cands = session.scalars(
            select(Candidate)
            .options(defer(Candidate.structure), defer(Candidate.origin_detail))
            .where(Candidate.campaign_id == camp.campaign_id, Candidate.is_reference.is_(False))
        ).all()
        ids = [c.id for c in cands]
        preds: dict[int, Prediction] = {}
        for pred in session.scalars(
            select(Prediction)
            .where(Prediction.candidate_id.in_(ids))
            .order_by(Prediction.round_index)
        ):
            preds[pred.candidate_id] = pred  # later rounds overwrite: the latest model's view
        hulls = deciding_hull_results(session, ids, camp.fidelities)
        queue = {
            q.candidate_id: q
            for q in session.scalars(select(ReviewItem).where(ReviewItem.candidate_id.in_(ids)))
        }
    rows = []
    for c in cands:
        p, h, q = preds.get(c.id), hulls.get(c.id), queue.get(c.id)
        rows.append(
            {
                "uid": c.uid,
                "formula": c.reduced_formula,
                "chemsys": c.chemsys,
                "round": c.round_index,
                "status": c.status,
                "review": q.status if q else None,
                "rank": q.rank if q else None,
                "e_hull_pred": p.e_hull_mean if p else None,
                "e_form_std": p.e_form_std if p else None,
                "e_above_hull": h.e_above_hull if h else None,
                "stable": h.stable if h else None,
                "fidelity": h.fidelity if h else None,
                "hull_mode": h.hull_mode if h else None,
                "novelty": c.novelty,
                "known_id": c.known_id,
                "spacegroup": c.spacegroup,
                "origin": c.origin,
                "parent": c.parent,
            }
        )
    return rows


def candidate_exists(camp: OpenCampaign, uid: str) -> bool:
    """Whether this campaign has a candidate `uid`."""
    with camp.db.session() as session:
        return (
            session.scalar(
                select(Candidate.id).where(
                    Candidate.campaign_id == camp.campaign_id, Candidate.uid == uid
                )
            )
            is not None
        )


@dataclass
class TableQuery:
    """Filters and sort order of the candidate table, as given in the page's query string."""

    status: str | None = None
    review: str | None = None  # pending / approved / rejected / queued / none
    chemsys: str | None = None
    round: int | None = None
    origin: str | None = None
    spacegroup: int | None = None
    max_e_hull_pred: float | None = None
    max_e_above_hull: float | None = None
    max_uncertainty: float | None = None
    sort: str = "e_above_hull"
    order: str = "asc"

    def keep(self, row: dict[str, Any]) -> bool:
        exact = {
            "status": self.status,
            "chemsys": self.chemsys,
            "round": self.round,
            "origin": self.origin,
            "spacegroup": self.spacegroup,
        }
        for key, want in exact.items():
            if want is not None and want != "" and row[key] != want:
                return False
        if self.review == "queued" and row["review"] is None:
            return False
        if self.review == "none" and row["review"] is not None:
            return False
        if self.review in ("pending", "approved", "rejected") and row["review"] != self.review:
            return False
        maxima = {
            "e_hull_pred": self.max_e_hull_pred,
            "e_above_hull": self.max_e_above_hull,
            "e_form_std": self.max_uncertainty,
        }
        for key, limit in maxima.items():
            if limit is not None and (row[key] is None or row[key] > limit):
                return False
        return True

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = [r for r in rows if self.keep(r)]
        key = self.sort if self.sort in TABLE_COLUMNS else "e_above_hull"
        present = [r for r in kept if r[key] is not None]
        missing = [r for r in kept if r[key] is None]
        present.sort(key=lambda r: (r[key], r["uid"]), reverse=self.order == "desc")
        return present + sorted(missing, key=lambda r: r["uid"])  # blanks last either way


def choices(rows: list[dict[str, Any]]) -> dict[str, list]:
    """Values present in the table, for the filter drop-downs."""
    return {
        key: sorted({r[key] for r in rows if r[key] is not None})
        for key in ("status", "chemsys", "round", "origin", "spacegroup")
    }


@dataclass
class CandidateView:
    uid: str
    row: Candidate
    initial: Structure
    relaxed: Structure | None
    relaxed_spacegroup: int | None
    predictions: list[dict[str, Any]]
    calculations: list[Calculation]
    hull_results: list[HullResult]
    queue: ReviewItem | None
    history: list
    parent_uid: str | None  # the parent when it is another candidate of this campaign
    round_run_id: str | None
    marked: Marked | None
    phase_points: list[PhasePoint] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def structure(self) -> Structure:
        return self.relaxed or self.initial


def candidate_view(camp: OpenCampaign, uid: str) -> CandidateView | None:
    """Everything the candidate page shows (structures, calculations, predictions, hull and
    phase diagram data, review history); None for an unknown `uid`."""
    with camp.db.session() as session:
        cand = session.scalars(
            select(Candidate).where(Candidate.campaign_id == camp.campaign_id, Candidate.uid == uid)
        ).first()
        if cand is None:
            return None
        calcs = session.scalars(
            select(Calculation).where(Calculation.candidate_id == cand.id).order_by(Calculation.id)
        ).all()
        preds = session.execute(
            select(Prediction, ModelVersion)
            .outerjoin(
                ModelVersion,
                (ModelVersion.version == Prediction.model_version)
                & (ModelVersion.campaign_id == camp.campaign_id),
            )
            .where(Prediction.candidate_id == cand.id)
            .order_by(Prediction.round_index)
        ).all()
        hulls = session.scalars(
            select(HullResult)
            .where(HullResult.candidate_id == cand.id)
            .order_by(HullResult.round_index)
        ).all()
        queue = session.scalars(
            select(ReviewItem).where(ReviewItem.candidate_id == cand.id)
        ).first()
        parent_uid = None
        if cand.parent:
            parent_uid = session.scalar(
                select(Candidate.uid).where(
                    Candidate.campaign_id == camp.campaign_id, Candidate.uid == cand.parent
                )
            )
        round_run = session.scalar(
            select(Round.mlflow_run_id).where(
                Round.campaign_id == camp.campaign_id, Round.index == cand.round_index
            )
        )
        phase = _phase_points(session, camp, Composition(cand.formula))
    ok = [k for k in calcs if k.ok and k.fidelity == camp.fidelity and k.final_structure]
    relaxed = structure_from_json(ok[-1].final_structure) if ok else None
    prediction_rows = [
        {
            "model_version": p.model_version,
            "round": p.round_index,
            "e_form_mean": p.e_form_mean,
            "e_form_std": p.e_form_std,
            "e_hull_mean": p.e_hull_mean,
            "mlflow_run_id": mv.mlflow_run_id if mv else None,
            "n_train": mv.n_train if mv else None,
        }
        for p, mv in preds
    ]
    latest_hull = [h for h in hulls if h.fidelity == camp.fidelity]
    marked = None
    comp = Composition(cand.formula)
    if latest_hull:
        marked = Marked(uid, comp, latest_hull[-1].e_form_per_atom, predicted=False)
    elif prediction_rows:
        marked = Marked(uid, comp, preds[-1][0].e_form_mean, predicted=True)
    return CandidateView(
        uid=uid,
        row=cand,
        initial=structure_from_json(cand.structure),
        relaxed=relaxed,
        relaxed_spacegroup=space_group_number(relaxed) if relaxed is not None else None,
        predictions=prediction_rows,
        calculations=list(calcs),
        hull_results=list(hulls),
        queue=queue,
        history=history(camp.db, camp.campaign_id, uid),
        parent_uid=parent_uid,
        round_run_id=round_run,
        marked=marked,
        phase_points=phase,  # the candidate too: a stable one is part of its own hull
        warnings=_warnings(camp, relaxed, latest_hull[-1] if latest_hull else None),
    )


def _warnings(camp: OpenCampaign, relaxed: Structure | None, hull: HullResult | None) -> list[str]:
    if relaxed is None or hull is None:
        return []
    tolerance = camp.config.references.disagreement_tolerance
    return review_warnings(
        relaxed, hull.e_above_hull, hull.e_above_hull_other, hull.hull_mode, tolerance
    )


def _phase_points(session: Session, camp: OpenCampaign, comp: Composition) -> list[PhasePoint]:
    """Entries of the latest hull whose elements lie within the candidate's system."""
    latest = session.scalar(
        select(func.max(HullResult.round_index)).where(HullResult.fidelity == camp.fidelity)
    )
    if latest is None:
        return []
    elements = {el.symbol for el in comp.elements}
    rows = session.execute(
        select(Candidate.uid, Candidate.formula, Candidate.is_reference, HullResult.e_form_per_atom)
        .join(HullResult, HullResult.candidate_id == Candidate.id)
        .where(
            Candidate.campaign_id == camp.campaign_id,
            HullResult.fidelity == camp.fidelity,
            HullResult.round_index == latest,
        )
    ).all()
    out = []
    for uid, formula, is_ref, e_form in rows:
        c = Composition(formula)
        if {el.symbol for el in c.elements} <= elements:
            out.append(PhasePoint(uid, c, e_form, bool(is_ref)))
    return out


def campaign_view(camp: OpenCampaign) -> dict[str, Any]:
    """Rounds with their metrics and run ids, and discoveries in the order they were made."""
    with camp.db.session() as session:
        rounds = session.scalars(
            select(Round).where(Round.campaign_id == camp.campaign_id).order_by(Round.index)
        ).all()
        latest = session.scalar(
            select(func.max(HullResult.round_index)).where(HullResult.fidelity == camp.fidelity)
        )
        stable_now: set[int] = set()
        if latest is not None:
            stable_now = set(
                session.scalars(
                    select(HullResult.candidate_id).where(
                        HullResult.fidelity == camp.fidelity,
                        HullResult.round_index == latest,
                        HullResult.stable.is_(True),
                    )
                )
            )
        validated = session.execute(
            select(
                Candidate.id,
                Candidate.uid,
                Candidate.reduced_formula,
                Calculation.created_at,
                Calculation.round_index,
            )
            .join(Calculation, Calculation.candidate_id == Candidate.id)
            .where(
                Candidate.campaign_id == camp.campaign_id,
                Candidate.is_reference.is_(False),
                Calculation.fidelity == camp.fidelity,
                Calculation.ok.is_(True),
            )
            .order_by(Calculation.created_at, Calculation.id)
        ).all()
        queued = session.execute(
            select(ReviewItem.round_index, ReviewItem.status)
            .join(Candidate, Candidate.id == ReviewItem.candidate_id)
            .where(Candidate.campaign_id == camp.campaign_id)
        ).all()
        round_rows = [
            {
                "round": r.index,
                "stage": r.stage,
                "screen_model": r.screen_model,
                "mlflow_run_id": r.mlflow_run_id,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                **(r.metrics or {}),
            }
            for r in rounds
        ]
    discoveries = [
        {"uid": uid, "formula": formula, "at": at, "round": rnd}
        for cid, uid, formula, at, rnd in validated
        if cid in stable_now
    ]
    return {
        "rounds": round_rows,
        "started_at": round_rows[0]["started_at"] if round_rows else None,
        "discoveries": discoveries,
        "validated": len(validated),
        "queue": {
            s: sum(1 for _, st in queued if st == s) for s in ("pending", "approved", "rejected")
        },
    }
