"""An interactive 3D view of a crystal as plotly traces: atoms, unit cell and bonds.

Only plotly.js is needed in the browser. Atoms on a cell face, edge or corner are drawn at
every periodic copy on the cell, as crystallographers expect, and bonds are drawn between the
atoms shown, so the picture is one tidy cell.
"""

from __future__ import annotations

import itertools
import logging
from functools import cache
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pymatgen.vis
import yaml
from pymatgen.analysis.local_env import JmolNN
from pymatgen.core import Structure

log = logging.getLogger(__name__)

EDGE_TOL = 0.02  # fractional distance from a face at which a site is copied to the far face
CELL_EDGES = [
    (a, b)
    for a, b in itertools.combinations(itertools.product((0, 1), repeat=3), 2)
    if sum(x != y for x, y in zip(a, b, strict=True)) == 1
]


@cache
def _jmol_colours() -> dict[str, str]:
    path = Path(pymatgen.vis.__file__).parent / "ElementColorSchemes.yaml"
    scheme = yaml.safe_load(path.read_text())["Jmol"]
    return {el: f"rgb({r},{g},{b})" for el, (r, g, b) in scheme.items()}


def _colour(symbol: str) -> str:
    return _jmol_colours().get(symbol, "rgb(255,20,147)")


def _drawn_sites(structure: Structure) -> list[tuple[str, np.ndarray]]:
    """(element, fractional coords) of every site and its copies on the cell boundary."""
    out = []
    for site in structure:
        frac = np.mod(site.frac_coords, 1.0)
        frac[np.isclose(frac, 1.0, atol=1e-8)] = 0.0
        shifts = [(0, 1) if f < EDGE_TOL else (0,) for f in frac]
        for shift in itertools.product(*shifts):
            out.append((site.specie.symbol, frac + np.array(shift)))
    return out


def _bonds(structure: Structure, drawn: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cartesian segments of the bonds (Jmol's criterion) between atoms drawn in the cell."""
    try:
        nn = JmolNN()
        infos = [nn.get_nn_info(structure, i) for i in range(len(structure))]
    except Exception as err:  # a bond finder failing must not take the page down
        log.warning("no bonds for %s: %s", structure.formula, err)
        return []
    lattice = structure.lattice
    wrapped = np.mod(drawn, 1.0) % 1.0
    segments: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    for i, site in enumerate(structure):
        home = np.mod(site.frac_coords, 1.0) % 1.0
        # every drawn copy of site i gets its bonds, shifted along with it
        for start in drawn[np.all(np.isclose(wrapped, home, atol=1e-6), axis=1)]:
            for info in infos[i]:
                end = start + (info["site"].frac_coords - site.frac_coords)
                # bonds to atoms outside the drawn cell would stick out as loose spokes
                if not np.any(np.all(np.isclose(drawn, end, atol=1e-4), axis=1)):
                    continue
                key = tuple(sorted((tuple(np.round(start, 4)), tuple(np.round(end, 4)))))
                segments[key] = (
                    lattice.get_cartesian_coords(start),
                    lattice.get_cartesian_coords(end),
                )
    return list(segments.values())


def _lines(segments) -> tuple[list, list, list]:
    xs, ys, zs = [], [], []
    for a, b in segments:
        xs += [a[0], b[0], None]
        ys += [a[1], b[1], None]
        zs += [a[2], b[2], None]
    return xs, ys, zs


def structure_figure(structure: Structure, title: str = "") -> go.Figure:
    """A plotly figure (scatter3d) of one unit cell with atoms coloured by element."""
    lattice = structure.lattice
    drawn = _drawn_sites(structure)
    fracs = np.array([f for _, f in drawn])
    fig = go.Figure()
    corners = [
        lattice.get_cartesian_coords(np.array(a)) for a in itertools.product((0, 1), repeat=3)
    ]
    cell = [
        (lattice.get_cartesian_coords(np.array(a)), lattice.get_cartesian_coords(np.array(b)))
        for a, b in CELL_EDGES
    ]
    x, y, z = _lines(cell)
    fig.add_trace(
        go.Scatter3d(
            x=x,
            y=y,
            z=z,
            mode="lines",
            name="unit cell",
            line={"color": "#333", "width": 3},
            hoverinfo="skip",
        )
    )
    x, y, z = _lines(_bonds(structure, fracs))
    if x:
        fig.add_trace(
            go.Scatter3d(
                x=x,
                y=y,
                z=z,
                mode="lines",
                name="bonds",
                line={"color": "#888", "width": 5},
                hoverinfo="skip",
            )
        )
    for symbol in sorted({s for s, _ in drawn}):
        pts = np.array([lattice.get_cartesian_coords(f) for s, f in drawn if s == symbol])
        frac_text = [
            f"{symbol} ({f[0]:.3f}, {f[1]:.3f}, {f[2]:.3f})" for s, f in drawn if s == symbol
        ]
        fig.add_trace(
            go.Scatter3d(
                x=pts[:, 0],
                y=pts[:, 1],
                z=pts[:, 2],
                mode="markers",
                name=symbol,
                marker={
                    "size": 14,
                    "color": _colour(symbol),
                    "line": {"color": "#222", "width": 1},
                },
                text=frac_text,
                hoverinfo="text",
            )
        )
    span = np.ptp(np.array(corners), axis=0).max()
    axis = {
        "showbackground": False,
        "showticklabels": False,
        "title": "",
        "showgrid": False,
        "zeroline": False,
        "visible": False,
    }
    fig.update_layout(
        title={"text": title, "font": {"size": 13}},
        scene={"xaxis": axis, "yaxis": axis, "zaxis": axis, "aspectmode": "data"},
        margin={"l": 0, "r": 0, "t": 30 if title else 0, "b": 0},
        legend={"itemsizing": "constant"},
        height=420,
        meta={"span": float(span)},
    )
    return fig
