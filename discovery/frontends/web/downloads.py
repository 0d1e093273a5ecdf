"""Downloads: a candidate's CIF, the shortlist export, files of the campaign directory, and
plotly.js from the plotly package (the pages work with no internet)."""

from __future__ import annotations

from pathlib import Path

import plotly
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response

from discovery.engine.shortlist import FORMATS, SUFFIXES, cif_text, render_export, shortlist
from discovery.frontends.web.data import candidate_view

router = APIRouter()

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
MEDIA = {
    "csv": "text/csv",
    "json": "application/json",
    "cif": "application/zip",
    "extxyz": "chemical/x-extxyz",
}
# What /files serves: run artifacts worth showing (plots, shortlists). Not the stores, the
# config (its store URL may hold a password) or checkpoints.
SERVABLE = {".png": "image/png", ".svg": "image/svg+xml", ".csv": "text/csv"}


@router.get("/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    """The bundled plotly.js: the app works without internet access."""
    return FileResponse(PLOTLY_JS, media_type="text/javascript")


@router.get("/candidates/{uid}/structure.cif")
def cif(
    request: Request, uid: str, kind: str = Query("relaxed", pattern="^(relaxed|generated)$")
) -> Response:
    """A candidate's relaxed (default) or generated structure as a CIF download."""
    view = candidate_view(request.app.state.camp, uid)
    if view is None:
        raise HTTPException(404, f"no candidate {uid!r} in this campaign")
    structure = view.relaxed if kind == "relaxed" else view.initial
    if structure is None:
        raise HTTPException(404, f"{uid} has no relaxed structure")
    name = f"{uid}_{structure.composition.reduced_formula}_{kind}.cif"
    return Response(
        cif_text(structure),
        media_type="chemical/x-cif",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/export")
def export(
    request: Request,
    fmt: str = Query("csv", alias="format", pattern=f"^({'|'.join(FORMATS)})$"),
    status: str | None = Query(None, pattern="^(pending|approved|rejected)?$"),
) -> Response:
    """The shortlist, built in memory from the store: the request names no file at all."""
    camp = request.app.state.camp
    items = shortlist(camp.db, camp.campaign_id, camp.fidelities, status or None)
    name = f"{camp.config.name}-shortlist{'-' + status if status else ''}.{SUFFIXES[fmt]}"
    return Response(
        render_export(items, fmt),
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def safe_path(root: Path, relative: str) -> Path | None:
    """`relative` inside `root` after resolving '..' and symlinks, or None."""
    if not relative or "\x00" in relative or Path(relative).is_absolute():
        return None
    root = root.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


@router.get("/files/{relative:path}")
def campaign_file(request: Request, relative: str) -> FileResponse:
    """A file of the campaign directory of a servable type; 404 for anything outside it."""
    target = safe_path(request.app.state.directory, relative)
    if target is None or target.suffix.lower() not in SERVABLE:
        raise HTTPException(404, "no such file in the campaign directory")
    return FileResponse(target, media_type=SERVABLE[target.suffix.lower()])
