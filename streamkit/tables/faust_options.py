"""Faust's table options that streamkit refuses, each with what to do instead.

Faust's ``app.Table()`` takes them; a table here that accepted them without doing what
they ask would hold its data somewhere else than the code says (``changelog_topic``),
window it differently (``window``) or put keys in other partitions
(``use_partitioner``), so they are refused unless they ask for Faust's default.
"""
from __future__ import annotations

from typing import Any

from streamkit.errors import ImproperlyConfigured

__all__ = ["refuse_faust_options"]


def refuse_faust_options(name: str, *, window: Any = None, changelog_topic: Any = None,
                         use_partitioner: bool = False) -> None:
    """Raise ``ImproperlyConfigured`` for an option of Faust's this table cannot
    honour; ``None``/``False`` (Faust's defaults) pass."""
    if window is not None:
        raise ImproperlyConfigured(
            f"table {name!r}: window= is not supported; make the table windowed with "
            "its methods: app.Table(...).tumbling(size), .hopping(size, step), "
            ".sliding(size) or .session(gap)")
    if changelog_topic is not None:
        raise ImproperlyConfigured(
            f"table {name!r}: changelog_topic= is not supported; a table's changelog "
            "is always <app id>-<table name>-changelog, compacted, created by the app "
            "with the table's partitions")
    if use_partitioner:
        raise ImproperlyConfigured(
            f"table {name!r}: use_partitioner=True is not supported; inside an agent "
            "a write goes to the partition of the event, so group_by the stream by the "
            "table's key first (outside an agent a write goes to the key's partition "
            "already)")
