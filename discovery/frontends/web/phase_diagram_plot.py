"""The formation-energy phase diagram of a candidate's chemical system, with the candidate
marked: binary as a convex-hull line, ternary as a Gibbs triangle with its tie-lines, larger
systems as hull distances per formula (no honest 2D picture exists there)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import plotly.graph_objects as go
from pymatgen.core import Composition

from discovery.domain.convex_hull import FormationHull


@dataclass(frozen=True)
class PhasePoint:
    uid: str
    composition: Composition
    e_form_per_atom: float
    is_reference: bool


@dataclass(frozen=True)
class Marked:
    """The candidate to mark: simulated, or predicted when it has not been validated."""

    uid: str
    composition: Composition
    e_form_per_atom: float
    predicted: bool


def _hover(uid: str, comp: Composition, e_form: float, e_hull: float) -> str:
    return f"{uid}<br>{comp.reduced_formula}<br>E_form {e_form:.3f} eV/at<br>E_hull {e_hull:.3f}"


def phase_figure(elements: list[str], points: list[PhasePoint], marked: Marked) -> go.Figure:
    """The binary or ternary formation-energy hull of `points`, with the candidate `marked` as
    a star."""
    elements = sorted(elements)
    ids = {i: p for i, p in enumerate(points)}
    hull = FormationHull(elements, [(i, p.composition, p.e_form_per_atom) for i, p in ids.items()])
    e_hull = {i: hull.point(i).e_above_hull for i in ids}
    marked_hull = hull.distance(marked.composition, marked.e_form_per_atom)
    label = "this candidate (predicted)" if marked.predicted else "this candidate"
    if len(elements) == 2:
        fig = _binary(elements, ids, e_hull, hull)
        x = marked.composition.get_atomic_fraction(elements[1])
        fig.add_trace(
            go.Scatter(
                x=[x],
                y=[marked.e_form_per_atom],
                mode="markers",
                name=label,
                marker={
                    "symbol": "star",
                    "size": 20,
                    "color": "crimson",
                    "line": {"color": "black", "width": 1},
                },
                hovertext=[
                    _hover(marked.uid, marked.composition, marked.e_form_per_atom, marked_hull)
                ],
                hoverinfo="text",
            )
        )
    elif len(elements) == 3:
        fig = _ternary(elements, ids, e_hull, hull)
        a, b, c = (marked.composition.get_atomic_fraction(el) for el in elements)
        fig.add_trace(
            go.Scatterternary(
                a=[a],
                b=[b],
                c=[c],
                mode="markers",
                name=label,
                marker={
                    "symbol": "star",
                    "size": 20,
                    "color": "crimson",
                    "line": {"color": "black", "width": 1},
                },
                hovertext=[
                    _hover(marked.uid, marked.composition, marked.e_form_per_atom, marked_hull)
                ],
                hoverinfo="text",
            )
        )
    else:
        fig = _strip(ids, e_hull)
        fig.add_trace(
            go.Scatter(
                x=[marked.composition.reduced_formula],
                y=[marked_hull],
                mode="markers",
                name=label,
                marker={"symbol": "star", "size": 20, "color": "crimson"},
            )
        )
    fig.update_layout(
        title={
            "text": f"{'-'.join(elements)}: E_above_hull of this candidate "
            f"{marked_hull:.3f} eV/atom",
            "font": {"size": 13},
        },
        height=440,
        margin={"l": 50, "r": 20, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.18},
    )
    return fig


def _markers(ids, e_hull) -> dict:
    return {
        "size": 9,
        "color": [e_hull[i] for i in ids],
        "colorscale": "Viridis",
        "cmin": 0.0,
        # far-off outliers would wash out the interesting range near the hull
        "cmax": min(0.5, max([0.1, *e_hull.values()])),
        "colorbar": {"title": "E_hull", "x": 1.02, "len": 0.7},
        "line": {"color": "black", "width": 0.5},
    }


def _binary(elements, ids, e_hull, hull) -> go.Figure:
    other = elements[1]
    stable = sorted(
        [
            (e.composition.get_atomic_fraction(other), e.energy_per_atom)
            for e in hull.diagram.stable_entries
        ]
    )
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[s[0] for s in stable],
            y=[s[1] for s in stable],
            mode="lines",
            name="convex hull",
            line={"color": "black"},
            hoverinfo="skip",
        )
    )
    keys = list(ids)
    fig.add_trace(
        go.Scatter(
            x=[ids[i].composition.get_atomic_fraction(other) for i in keys],
            y=[ids[i].e_form_per_atom for i in keys],
            mode="markers",
            name="validated",
            marker=_markers(keys, e_hull),
            hovertext=[
                _hover(ids[i].uid, ids[i].composition, ids[i].e_form_per_atom, e_hull[i])
                for i in keys
            ],
            hoverinfo="text",
        )
    )
    fig.update_xaxes(title=f"x in {elements[0]}(1-x){other}(x)", range=[-0.02, 1.02])
    fig.update_yaxes(title="formation energy (eV/atom)")
    return fig


def _ternary(elements, ids, e_hull, hull) -> go.Figure:
    diagram = hull.diagram
    stable = set(diagram.stable_entries)
    entries = diagram.qhull_entries
    edges = set()
    for facet in diagram.facets:
        corners = [entries[k] for k in facet if k < len(entries) and entries[k] in stable]
        for e1, e2 in itertools.combinations(corners, 2):
            edges.add(
                tuple(sorted((e1.composition.reduced_formula, e2.composition.reduced_formula)))
            )
    fig = go.Figure()
    a: list[float | None] = []
    b: list[float | None] = []
    c: list[float | None] = []
    for f1, f2 in sorted(edges):
        for f in (f1, f2):
            comp = Composition(f)
            a.append(comp.get_atomic_fraction(elements[0]))
            b.append(comp.get_atomic_fraction(elements[1]))
            c.append(comp.get_atomic_fraction(elements[2]))
        a.append(None)  # a gap: the next edge is a separate line
        b.append(None)
        c.append(None)
    fig.add_trace(
        go.Scatterternary(
            a=a,
            b=b,
            c=c,
            mode="lines",
            name="tie-lines",
            line={"color": "black", "width": 1},
            hoverinfo="skip",
        )
    )
    keys = list(ids)
    fig.add_trace(
        go.Scatterternary(
            a=[ids[i].composition.get_atomic_fraction(elements[0]) for i in keys],
            b=[ids[i].composition.get_atomic_fraction(elements[1]) for i in keys],
            c=[ids[i].composition.get_atomic_fraction(elements[2]) for i in keys],
            mode="markers",
            name="validated",
            marker=_markers(keys, e_hull),
            hovertext=[
                _hover(ids[i].uid, ids[i].composition, ids[i].e_form_per_atom, e_hull[i])
                for i in keys
            ],
            hoverinfo="text",
        )
    )
    fig.update_layout(
        ternary={
            "aaxis": {"title": elements[0]},
            "baxis": {"title": elements[1]},
            "caxis": {"title": elements[2]},
        }
    )
    return fig


def _strip(ids, e_hull) -> go.Figure:
    fig = go.Figure()
    keys = list(ids)
    fig.add_trace(
        go.Scatter(
            x=[ids[i].composition.reduced_formula for i in keys],
            y=[e_hull[i] for i in keys],
            mode="markers",
            name="validated",
            marker=_markers(keys, e_hull),
            hovertext=[ids[i].uid for i in keys],
        )
    )
    fig.update_yaxes(title="energy above hull (eV/atom)")
    return fig
