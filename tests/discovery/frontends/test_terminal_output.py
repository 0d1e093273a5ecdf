"""What a person reads in a terminal: summary tables that fit 80 columns uncut, one log
format for our lines, the libraries' and Python warnings."""

from __future__ import annotations

import io
import logging
import os
import warnings

import pytest
from rich.console import Console

from discovery.frontends import cli
from discovery.frontends.summary_tables import fitted_tables


def console(width: int) -> Console:
    return Console(file=io.StringIO(), width=width, color_system=None)


def text(c: Console) -> str:
    return c.file.getvalue()


def test_fitted_tables_split_instead_of_cutting_headers():
    columns = {k: k.replace("_", " ") for k in ("round", *(f"metric_{i}" for i in range(12)))}
    rows = [{k: 1.23456 for k in columns} | {"round": r} for r in range(3)]
    narrow = fitted_tables("rounds", columns, rows, 80)
    assert len(narrow) > 1
    c = console(80)
    for table in narrow:
        c.print(table)
    out = text(c)
    assert "…" not in out and max(map(len, out.splitlines())) <= 80
    assert all(header in out for header in columns.values())
    assert out.count("round") >= len(narrow)  # the key column starts every table
    assert len(fitted_tables("rounds", columns, rows, 400)) == 1


def test_cells_are_text_not_markup():
    rows = [{"id": "[red]eve", "note": "[/b] see ref [1]"}]
    c = console(80)
    for table in fitted_tables("t [b]", {"id": "id", "note": "note"}, rows, 80):
        c.print(table)
    assert "[red]eve" in text(c) and "[/b] see ref [1]" in text(c)


def test_the_campaign_summary_fits_an_80_column_terminal(toy_campaign, monkeypatch):
    c = console(80)
    monkeypatch.setattr(cli, "out", c)
    cli._print_status(toy_campaign)
    out = text(c)
    assert "…" not in out
    assert max(map(len, out.splitlines())) <= 80
    for header in ("round", "stage", "validated", "stable", "hit rate", "wall (s)", "e_above_hull"):
        assert header in out


@pytest.fixture
def logging_restored():
    names = ("discovery", "models", "simulators", "mlflow", "py.warnings")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate) for n in names}
    # An earlier in-process CLI test may have left logging believing it captures warnings
    # while pytest restored `warnings.showwarning` since: start from a clean state.
    logging.captureWarnings(False)
    yield
    logging.captureWarnings(False)
    for n, (handlers, propagate) in saved.items():
        logging.getLogger(n).handlers[:] = handlers
        logging.getLogger(n).propagate = propagate


def test_warnings_and_library_logs_share_our_format(logging_restored, monkeypatch):
    c = console(200)
    monkeypatch.setattr(cli, "err", c)
    monkeypatch.delenv("MLFLOW_CONFIGURE_LOGGING", raising=False)
    cli._setup_logging(verbose=False)
    ours = logging.getLogger("discovery").handlers
    assert logging.getLogger("mlflow").handlers == ours
    assert logging.getLogger("py.warnings").handlers == ours
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("Converting a tensor with requires_grad=True", UserWarning, stacklevel=1)
    logging.getLogger("mlflow.store").warning("from mlflow")
    out = text(c)
    assert "WARNING" in out and "requires_grad=True" in out and "from mlflow" in out
    assert os.environ["MLFLOW_CONFIGURE_LOGGING"] == "false"
