"""Shortlist export with provenance: CSV, JSON, a zip of CIFs with a manifest, or extended XYZ
(every frame carries its row as key=value pairs, so ASE and friends read the provenance)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pymatgen.core import Structure
from pymatgen.io.cif import CifWriter
from sqlalchemy import select

from discovery.domain.review_warnings import review_warnings
from discovery.store import (
    Calculation,
    Campaign,
    Candidate,
    Database,
    Prediction,
    ReviewDecision,
    ReviewItem,
    Round,
)
from discovery.store.convert import SYMPREC, space_group_number, structure_from_json
from discovery.store.queries import deciding_hull_results

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# references.disagreement_tolerance of a config stored before the field existed.
DEFAULT_TOLERANCE = 0.1

log = logging.getLogger(__name__)

FORMATS = ("csv", "json", "cif", "extxyz")
# The file name suffix of each format, for downloads.
SUFFIXES = {"csv": "csv", "json": "json", "cif": "zip", "extxyz": "extxyz"}
COLUMNS = (
    "id", "formula", "reduced_formula", "chemsys", "spacegroup", "nsites",
    "e_form_pred", "e_form_pred_std", "e_hull_pred", "e_form_sim", "e_above_hull",
    "e_above_hull_first", "stable", "hull_mode", "e_above_hull_other",
    "decomposition", "novelty", "known_id", "warnings",
    "round", "origin", "parent", "origin_detail", "model_version",
    "simulator", "fidelity", "converged", "relax_steps", "review_status", "reviewer",
    "review_note", "reviewed_at", "mlflow_run_id", "campaign", "config_sha256",
)  # fmt: skip


def _latest(session: Session, model, candidate_id: int, order_col):
    return session.scalars(
        select(model).where(model.candidate_id == candidate_id).order_by(order_col.desc())
    ).first()


def shortlist(
    db: Database, campaign_id: int, fidelities: str | Sequence[str], status: str | None = None
) -> list[tuple[dict[str, Any], Any]]:
    """(row, relaxed structure) for each queued candidate, in queue order.

    `fidelities` is the ladder, cheapest first (or one fidelity). Each row reports the
    highest rung that computed the candidate: its relaxed structure, formation energy and
    hull distance, and that rung's name in `fidelity`; the first rung's hull distance stays
    in `e_above_hull_first` for comparison."""
    if isinstance(fidelities, str):
        fidelities = [fidelities]
    out = []
    with db.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        # The config that made the shortlist: with its hash a row names the exact campaign.
        config_sha = hashlib.sha256(campaign.config_yaml.encode()).hexdigest()
        references = (yaml.safe_load(campaign.config_yaml) or {}).get("references") or {}
        tolerance = float(references.get("disagreement_tolerance", DEFAULT_TOLERANCE))
        query = (
            select(ReviewItem, Candidate)
            .join(Candidate, Candidate.id == ReviewItem.candidate_id)
            .where(Candidate.campaign_id == campaign_id)
            .order_by(ReviewItem.rank)
        )
        if status is not None:
            query = query.where(ReviewItem.status == status)
        items = session.execute(query).all()
        ids = [cand.id for _, cand in items]
        deciding = deciding_hull_results(session, ids, fidelities)
        first = deciding_hull_results(session, ids, fidelities[:1])
        for item, cand in items:
            hull = deciding[cand.id]
            calc = session.scalars(
                select(Calculation).where(
                    Calculation.candidate_id == cand.id, Calculation.fidelity == hull.fidelity
                )
            ).first()
            assert calc is not None  # a hull result implies its calculation at that fidelity
            # The round that validated it on the first rung holds the prediction and the run.
            first_calc_round = session.scalar(
                select(Calculation.round_index).where(
                    Calculation.candidate_id == cand.id, Calculation.fidelity == fidelities[0]
                )
            )
            round_row = session.scalars(
                select(Round).where(
                    Round.campaign_id == campaign_id, Round.index == first_calc_round
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
                "e_above_hull_first": first[cand.id].e_above_hull if cand.id in first else None,
                "stable": hull.stable,
                "hull_mode": hull.hull_mode,
                "e_above_hull_other": hull.e_above_hull_other,
                "decomposition": hull.decomposition,
                "novelty": cand.novelty,
                "known_id": cand.known_id,
                "warnings": " | ".join(
                    review_warnings(
                        relaxed,
                        hull.e_above_hull,
                        hull.e_above_hull_other,
                        hull.hull_mode,
                        tolerance,
                    )
                ),
                "round": first_calc_round,
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
                "reviewed_at": last.created_at.isoformat() if last else None,
                "mlflow_run_id": round_row.mlflow_run_id if round_row else None,
                "campaign": campaign.name,
                "config_sha256": config_sha,
            }
            out.append((row, relaxed))
    return out


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _xyz_value(value: Any) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, (int, float)):
        return repr(value)
    # One comment line per frame: line breaks in a note become spaces (CSV/JSON keep them).
    text = " ".join(str(value).splitlines())
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _extxyz_text(items: list[tuple[dict[str, Any], Any]]) -> str:
    frames = []
    for row, structure in items:
        lattice = " ".join(f"{x:.8f}" for x in structure.lattice.matrix.flatten())
        info = " ".join(f"{k}={_xyz_value(v)}" for k, v in row.items() if v is not None)
        lines = [
            str(len(structure)),
            f'Lattice="{lattice}" Properties=species:S:1:pos:R:3 pbc="T T T" {info}',
        ]
        for site in structure:
            x, y, z = site.coords
            lines.append(f"{site.specie.symbol:<3} {x:14.8f} {y:14.8f} {z:14.8f}")
        frames.append("\n".join(lines) + "\n")
    return "".join(frames)


def cif_text(structure: Structure) -> str:
    """A CIF with the symmetry the shortlist lists for the structure: spglib's refined cell
    and symmetry operations at the tolerance that `space_group_number` uses (a bare P1 CIF
    would hide a space group the table shows); P1 only where spglib finds nothing."""
    try:
        return str(CifWriter(structure, symprec=SYMPREC))
    except Exception as err:  # spglib gives up on some distorted cells
        log.debug("CIF of %s in P1: %s", structure.formula, err)
        return str(CifWriter(structure))


def render_export(items: list[tuple[dict[str, Any], Any]], fmt: str) -> bytes:
    """The export file's bytes, in memory (the web app streams them; nothing touches disk)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    rows = [row for row, _ in items]
    if fmt == "csv":
        return _csv_text(rows).encode()
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str).encode()
    if fmt == "extxyz":
        return _extxyz_text(items).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.csv", _csv_text(rows))
        for row, structure in items:
            zf.writestr(f"{row['id']}_{row['reduced_formula']}.cif", cif_text(structure))
    return buf.getvalue()


def write_export(
    items: list[tuple[dict[str, Any], Any]], fmt: str, out: Path, force: bool = False
) -> Path:
    """Write shortlist `items` to `out` in `fmt` (csv, json, cif or extxyz), creating its
    folder; returns the path. A bad format raises before any file is created, an existing
    file raises FileExistsError unless `force`."""
    data = render_export(items, fmt)  # raises on a bad format before a file is created
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb" if force else "xb") as f:  # "x": nothing is truncated, even in a race
        f.write(data)
    return out
