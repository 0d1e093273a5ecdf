"""Shortlist export with provenance: CSV, JSON, or a zip of CIFs with a manifest."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from pymatgen.io.cif import CifWriter
from sqlalchemy import select

from discovery.store import (
    Calculation,
    Candidate,
    Database,
    HullResult,
    Prediction,
    ReviewDecision,
    ReviewItem,
    Round,
)
from discovery.store.convert import space_group_number, structure_from_json

FORMATS = ("csv", "json", "cif")
COLUMNS = (
    "id", "formula", "reduced_formula", "chemsys", "spacegroup", "nsites",
    "e_form_pred", "e_form_pred_std", "e_hull_pred", "e_form_sim", "e_above_hull", "stable",
    "decomposition", "round", "origin", "parent", "origin_detail", "model_version",
    "simulator", "fidelity", "converged", "relax_steps", "review_status", "reviewer",
    "review_note", "mlflow_run_id",
)  # fmt: skip


def _latest(session, model, candidate_id: int, order_col):
    return session.scalars(
        select(model).where(model.candidate_id == candidate_id).order_by(order_col.desc())
    ).first()


def shortlist(
    db: Database, campaign_id: int, fidelity: str, status: str | None = None
) -> list[tuple[dict[str, Any], Any]]:
    """(row, relaxed structure) for each queued candidate, in queue order."""
    out = []
    with db.session() as session:
        query = (
            select(ReviewItem, Candidate)
            .join(Candidate, Candidate.id == ReviewItem.candidate_id)
            .where(Candidate.campaign_id == campaign_id)
            .order_by(ReviewItem.rank)
        )
        if status is not None:
            query = query.where(ReviewItem.status == status)
        for item, cand in session.execute(query).all():
            calc = session.scalars(
                select(Calculation).where(
                    Calculation.candidate_id == cand.id, Calculation.fidelity == fidelity
                )
            ).first()
            hull = _latest(session, HullResult, cand.id, HullResult.round_index)
            round_row = session.scalars(
                select(Round).where(
                    Round.campaign_id == campaign_id, Round.index == calc.round_index
                )
            ).first()
            # The prediction that got it selected: the screening model of its validation round.
            pred = None
            if round_row is not None and round_row.screen_model is not None:
                pred = session.scalars(
                    select(Prediction).where(
                        Prediction.candidate_id == cand.id,
                        Prediction.model_version == round_row.screen_model,
                    )
                ).first()
            last = _latest(session, ReviewDecision, cand.id, ReviewDecision.id)
            relaxed = structure_from_json(calc.final_structure)
            row = {
                "id": cand.uid,
                "formula": relaxed.composition.formula.replace(" ", ""),
                "reduced_formula": cand.reduced_formula,
                "chemsys": cand.chemsys,
                "spacegroup": space_group_number(relaxed),
                "nsites": len(relaxed),
                "e_form_pred": pred.e_form_mean if pred else None,
                "e_form_pred_std": pred.e_form_std if pred else None,
                "e_hull_pred": pred.e_hull_mean if pred else None,
                "e_form_sim": hull.e_form_per_atom,
                "e_above_hull": hull.e_above_hull,
                "stable": hull.stable,
                "decomposition": hull.decomposition,
                "round": calc.round_index,
                "origin": cand.origin,
                "parent": cand.parent,
                "origin_detail": json.dumps(cand.origin_detail, sort_keys=True),
                "model_version": pred.model_version if pred else None,
                "simulator": calc.simulator,
                "fidelity": calc.fidelity,
                "converged": calc.converged,
                "relax_steps": calc.steps,
                "review_status": item.status,
                "reviewer": last.reviewer if last else None,
                "review_note": last.note if last else None,
                "mlflow_run_id": round_row.mlflow_run_id if round_row else None,
            }
            out.append((row, relaxed))
    return out


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_export(items: list[tuple[dict[str, Any], Any]], fmt: str, out: Path) -> Path:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [row for row, _ in items]
    if fmt == "csv":
        out.write_text(_csv_text(rows))
    elif fmt == "json":
        out.write_text(json.dumps(rows, indent=2, default=str))
    else:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.csv", _csv_text(rows))
            for row, structure in items:
                zf.writestr(f"{row['id']}_{row['reduced_formula']}.cif", str(CifWriter(structure)))
    return out
