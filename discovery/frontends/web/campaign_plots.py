"""Plots of the campaign page: what each round found, and discoveries as they were made."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots


def rounds_figure(rounds: list[dict[str, Any]]) -> go.Figure:
    """Validated and stable counts per round (bars) with the hit rate (line, right axis)."""
    x = [f"round {r['round']}" for r in rounds]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=x, y=[r.get("validated") for r in rounds], name="validated"))
    fig.add_trace(go.Bar(x=x, y=[r.get("stable") for r in rounds], name="stable"))
    fig.add_trace(go.Bar(x=x, y=[r.get("queued") for r in rounds], name="queued for review"))
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[r.get("hit_rate") for r in rounds],
            name="hit rate",
            mode="lines+markers",
            line={"color": "black"},
        ),
        secondary_y=True,
    )
    fig.update_yaxes(title="structures", secondary_y=False)
    fig.update_yaxes(
        title="hit rate (stable / validated)", range=[0, 1.02], dtick=0.25, secondary_y=True
    )
    fig.update_layout(
        title={"text": "rounds: hit rate per round", "font": {"size": 13}},
        barmode="group",
        height=360,
        margin={"l": 50, "r": 50, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def discoveries_figure(discoveries: list[dict[str, Any]], start=None) -> go.Figure:
    """Cumulative count of stable candidates (on the latest hull) by validation time, from
    zero at the campaign's start."""
    xs = [d["at"] for d in discoveries]
    ys = list(range(1, len(discoveries) + 1))
    text = [f"{d['uid']} {d['formula']} (round {d['round']})" for d in discoveries]
    if start is not None:
        xs, ys, text = [start, *xs], [0, *ys], ["campaign start", *text]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines+markers",
            line={"shape": "hv"},
            name="stable discoveries",
            hovertext=text,
            hoverinfo="text+x",
        )
    )
    fig.update_xaxes(title="validated at (UTC)")
    fig.update_yaxes(title="stable candidates, cumulative", rangemode="tozero")
    fig.update_layout(
        title={"text": "discoveries over time", "font": {"size": 13}},
        height=360,
        margin={"l": 50, "r": 20, "t": 40, "b": 40},
    )
    return fig


def model_figure(rounds: list[dict[str, Any]]) -> go.Figure:
    """The screening model's error on each round's new structures, before retraining."""
    x = [f"round {r['round']}" for r in rounds]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[r.get("mae_before_retrain") for r in rounds],
            mode="lines+markers",
            name="MAE before retrain",
        )
    )
    fig.add_trace(
        go.Scatter(x=x, y=[r.get("val_mae") for r in rounds], mode="lines+markers", name="val MAE")
    )
    fig.update_yaxes(title="eV/atom", rangemode="tozero")
    fig.update_layout(
        title={"text": "model error per round", "font": {"size": 13}},
        height=360,
        margin={"l": 50, "r": 20, "t": 40, "b": 40},
    )
    return fig
