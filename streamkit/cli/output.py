"""Box tables for the terminal, in the shape Faust's ``agents`` command prints (drawn
by ``streamkit.terminal``, which tables use too for ``as_ansitable``)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from streamkit.terminal import box_table

__all__ = ["box_table", "echo_table"]


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
               title: str | None = None) -> None:
    click.echo(box_table(headers, rows, title))
