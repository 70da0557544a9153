"""Box tables for the terminal, in the shape Faust's ``agents`` command prints: the
command line's listings and ``Table.as_ansitable()``."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any


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


def title_case(text: str) -> str:
    """``"vendor_rides"`` -> ``"Vendor Rides"``: Faust's titles and column names."""
    return " ".join(word.capitalize()
                    for word in text.replace("-", " ").replace("_", " ").split())


def ansitable(items: Iterable[tuple[Any, Any]], title: str, *, key: str = "Key",
              value: str = "Value", sort: bool = False,
              sortkey: Callable[[Any], Any] | None = None) -> str:
    """``items`` (key, value) as a box table, as Faust's ``Table.as_ansitable()``
    draws one: headers and title in title case, rows sorted by ``sortkey`` (default:
    the key) when ``sort``."""
    rows = (sorted(items, key=sortkey or _first) if sort else list(items))
    return box_table([title_case(key), title_case(value)], rows, title=title_case(title))


def _first(row: tuple[Any, Any]) -> Any:
    return row[0]
