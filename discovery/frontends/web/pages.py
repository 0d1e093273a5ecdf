"""The HTML pages: the candidate table, a candidate, the campaign."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from discovery.engine.campaign_directory import ARTIFACT_DIR
from discovery.engine.shortlist import FORMATS
from discovery.frontends.web import campaign_plots
from discovery.frontends.web.data import (
    TABLE_COLUMNS,
    TableQuery,
    campaign_view,
    candidate_rows,
    candidate_view,
    choices,
)
from discovery.frontends.web.phase_diagram_plot import phase_figure
from discovery.frontends.web.structure_view import structure_figure

router = APIRouter()

INTS = ("round", "spacegroup")
FLOATS = ("max_e_hull_pred", "max_e_above_hull", "max_uncertainty")
TEXTS = ("status", "review", "chemsys", "origin")


def table_query(request: Request) -> TableQuery:
    """The table's filters from the query string; empty fields (a form's 'any') are unset."""
    params = request.query_params
    values: dict[str, Any] = {}
    try:
        for key in INTS:
            if params.get(key):
                values[key] = int(params[key])
        for key in FLOATS:
            if params.get(key):
                values[key] = float(params[key])
    except ValueError as err:
        raise HTTPException(422, f"malformed filter: {err}") from None
    for key in TEXTS:
        if params.get(key):
            values[key] = params[key]
    if params.get("sort") in TABLE_COLUMNS:
        values["sort"] = params["sort"]
    if params.get("order") in ("asc", "desc"):
        values["order"] = params["order"]
    return TableQuery(**values)


def _render(request: Request, name: str, **context) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, name, context)


@router.get("/", response_class=HTMLResponse)
def table(request: Request) -> HTMLResponse:
    """The candidate table page, filtered and sorted by the query parameters."""
    camp = request.app.state.camp
    query = table_query(request)
    rows = candidate_rows(camp)
    shown = query.apply(rows)
    return _render(
        request,
        "table.html",
        rows=shown,
        total=len(rows),
        query=query,
        columns=TABLE_COLUMNS,
        choices=choices(rows),
        formats=FORMATS,
        params={k: v for k, v in request.query_params.items() if k not in ("sort", "order")},
    )


@router.get("/candidates/{uid}", response_class=HTMLResponse)
def candidate(request: Request, uid: str) -> HTMLResponse:
    """One candidate's page: structure, hull position, calculations, predictions, review."""
    camp = request.app.state.camp
    view = candidate_view(camp, uid)
    if view is None:
        raise HTTPException(404, f"no candidate {uid!r} in this campaign")
    which = "relaxed" if view.relaxed is not None else "generated"
    structure_fig = structure_figure(view.structure, f"{view.structure.formula} ({which})")
    phase_fig = None
    if view.marked is not None:
        elements = sorted(el.symbol for el in view.marked.composition.elements)
        if len(elements) >= 2:
            phase_fig = phase_figure(elements, view.phase_points, view.marked)
    links = request.app.state.links
    return _render(
        request,
        "candidate.html",
        v=view,
        structure_json=structure_fig.to_json(),
        phase_json=phase_fig.to_json() if phase_fig is not None else None,
        energy_json=_energy_figure(view).to_json(),
        round_link=links.run(view.round_run_id),
        model_links={p["model_version"]: links.run(p["mlflow_run_id"]) for p in view.predictions},
        fidelity=camp.fidelity,
    )


def _energy_figure(view):
    """Formation energy at each fidelity: each model's prediction (± ensemble std) and each
    simulator's relaxed value on the hull."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[f"GNN {p['model_version']}" for p in view.predictions],
            y=[p["e_form_mean"] for p in view.predictions],
            error_y={"type": "data", "array": [p["e_form_std"] for p in view.predictions]},
            mode="markers",
            marker={"size": 11},
            name="predicted (GNN ensemble)",
        )
    )
    sims: dict[str, float] = {}
    for h in view.hull_results:
        sims[h.fidelity] = h.e_form_per_atom  # the latest round's value per fidelity
    fig.add_trace(
        go.Scatter(
            x=[f"{fid} relaxed" for fid in sims],
            y=list(sims.values()),
            mode="markers",
            marker={"size": 13, "symbol": "diamond"},
            name="simulated",
        )
    )
    fig.update_yaxes(title="formation energy (eV/atom)")
    fig.update_layout(
        title={"text": "predicted vs simulated", "font": {"size": 13}},
        height=300,
        margin={"l": 50, "r": 20, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


@router.get("/campaign", response_class=HTMLResponse)
def campaign(request: Request) -> HTMLResponse:
    """The campaign overview: rounds with their metrics, MLflow links and parity plots."""
    camp = request.app.state.camp
    view = campaign_view(camp)
    links = request.app.state.links
    for r in view["rounds"]:
        r["link"] = links.run(r["mlflow_run_id"])
        r["parity"] = _artifact(request, r["mlflow_run_id"], "parity.png")
    return _render(
        request,
        "campaign.html",
        view=view,
        config=camp.config,
        rounds_json=campaign_plots.rounds_figure(view["rounds"]).to_json(),
        discoveries_json=campaign_plots.discoveries_figure(
            view["discoveries"], view["started_at"]
        ).to_json(),
        model_json=campaign_plots.model_figure(view["rounds"]).to_json(),
    )


def _artifact(request: Request, run_id: str | None, name: str) -> str | None:
    """The campaign-relative path of a run's artifact when it is stored in the campaign dir."""
    if not run_id:
        return None
    rel = f"{ARTIFACT_DIR}/{run_id}/artifacts/{name}"
    return rel if (request.app.state.directory / rel).is_file() else None
