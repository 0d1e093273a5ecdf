"""Tables people read in a terminal, fitted to its width: columns that do not fit beside each
other go to a further table that repeats the key column, so no header or value is cut to
"ro…" in an 80-column terminal and a wide one still gets a single table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from rich.table import Table

from discovery.frontends.safe_text import clean, plain

# A column's border and padding: one rule and a space either side.
_COLUMN_OVERHEAD = 3


def fmt(value: Any) -> str:
    """A cell's text: '-' for missing, three decimals for floats."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _shorten(text: str, limit: int | None) -> str:
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _width(header: str, cells: Sequence[str]) -> int:
    return max([len(header), *(len(c) for c in cells)]) + _COLUMN_OVERHEAD


def fitted_tables(
    title: str,
    columns: Mapping[str, str],
    rows: Sequence[Mapping[str, Any]],
    width: int,
    justify: Literal["left", "right"] = "right",
    max_cell: int | None = None,
) -> list[Table]:
    """`rows` as one or more tables no wider than `width`; `columns` maps row keys to
    headers, and its first key (the round, the candidate id) starts every table. Cells
    longer than `max_cell` (free text such as a reviewer's note) are shortened with '…'."""
    keys = list(columns)
    # Widths are measured on the text as printed: control characters written out visibly.
    cells = {k: [_shorten(clean(fmt(row.get(k))), max_cell) for row in rows] for k in keys}
    widths = {k: _width(columns[k], cells[k]) for k in keys}
    key, rest = keys[0], keys[1:]
    groups: list[list[str]] = []
    used = width  # forces a first group
    for k in rest:
        if used + widths[k] > width - 1 and (not groups or len(groups[-1]) > 1):
            groups.append([key])
            used = 1 + widths[key]
        groups[-1].append(k)
        used += widths[k]
    if not groups:
        groups = [[key]]
    tables = []
    for n, group in enumerate(groups):
        suffix = f" ({n + 1}/{len(groups)})" if len(groups) > 1 else ""
        table = Table(title=plain(title + suffix))
        for k in group:
            table.add_column(plain(columns[k]), justify=justify, no_wrap=True)
        for i in range(len(rows)):
            table.add_row(*(plain(cells[k][i]) for k in group))
        tables.append(table)
    return tables
