"""Box tables for the terminal, in the shape Faust's ``agents`` command prints."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click


def box_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
              title: str | None = None) -> str:
    """Render ``rows`` under ``headers`` as a box drawn with ``┌─┬┐``-style lines."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(left: str, mid: str, right: str) -> str:
        return left + mid.join("─" * (w + 2) for w in widths) + right

    def row_text(values: Sequence[str]) -> str:
        return "│" + "│".join(f" {v:<{w}} " for v, w in zip(values, widths, strict=True)) + "│"

    out = []
    if title:
        out.append(title)
    out.append(line("┌", "┬", "┐"))
    out.append(row_text(headers))
    out.append(line("├", "┼", "┤"))
    out.extend(row_text(row) for row in cells)
    out.append(line("└", "┴", "┘"))
    return "\n".join(out)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "<N/A>"
    return str(value).replace("\n", " ")


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
               title: str | None = None) -> None:
    click.echo(box_table(headers, rows, title))
