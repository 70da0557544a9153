"""``streamkit table APP NAME [KEY]``: a table's contents, read from its changelog.

The changelog topic (``<app id>-<table>-changelog``) holds every committed change of
every partition, so reading it needs neither the worker nor its stores: it works while
a worker runs (and holds the RocksDB lock on its stores), for the partitions of every
worker, on a read-only data directory, and without the web extra. The last record of a
key is its value; a tombstone (no value) deletes it. It shows what the workers have
committed: changes made since a worker's last commit (``commit_interval``) are not in
the changelog yet (decision 511).

Keys are parsed, ordered and made JSON as the web views do (``streamkit.web.tables``,
which needs no web extra), imported when the command runs.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from streamkit.cli.broker_commands import open_broker
from streamkit.cli.output import echo_table
from streamkit.tables.mapping import DELETED
from streamkit.types import TopicPartition

if TYPE_CHECKING:
    from streamkit.app import App
    from streamkit.tables.table import Table
    from streamkit.transport.base import Broker

#: changelog records read per fetch
READ_BATCH = 10_000


def show_table(app: App, name: str, key: str | None, *, broker: str | None,
               datadir: str | None, fmt: str) -> None:
    """Show the contents of table NAME (windowed tables window by window), or of one
    KEY, as the app's workers committed them to the table's changelog topic. Works
    while a worker runs."""
    table = app.tables.get(name)
    if table is None:
        raise click.ClickException(f"app {app.conf.id!r} has no table {name!r} (tables: "
                                   f"{', '.join(sorted(app.tables)) or 'none'})")
    candidates = None if key is None else _parse_key(table, key)
    url = broker or app.conf.broker
    conn = open_broker(url, datadir or app.conf.datadir, read_only=True)
    try:
        contents = read_changelog(conn, table)
    finally:
        conn.close()
    if candidates is None:
        rows = sorted(contents.items(), key=lambda kv: _order(kv[0], table))
    else:
        rows = _rows_of_key(table, key or "", candidates, contents)
    if fmt == "json":
        for stored_key, value in rows:
            click.echo(json.dumps(_json_row(table, stored_key, value), ensure_ascii=False))
        return
    title = (f"Table {name} of app {app.conf.id} (changelog {table.changelog_topic} on "
             f"{url})")
    if table.window is not None:
        echo_table(["key", "window start (UTC)", "window end (UTC)", "value"],
                   [(_text(k), _when(w[0]), _when(w[1]), _text(v)) for (k, w), v in rows],
                   title=title)
    else:
        echo_table(["key", "value"], [(_text(k), _text(v)) for k, v in rows], title=title)


def read_changelog(broker: Broker, table: Table) -> dict[Any, Any]:
    """The table as its changelog holds it: stored key -> value (windowed tables:
    ``(key, (start, end))`` -> value), across all partitions."""
    topic = table.changelog_topic
    count = broker.partition_count(topic)
    if count is None:
        raise click.ClickException(
            f"table {table.name!r} has no changelog topic {topic!r} on {broker.url} yet "
            "(no worker of the app has run there; check --broker and --datadir)")
    raw: dict[bytes, bytes] = {}
    for partition in range(count):
        tp = TopicPartition(topic, partition)
        offset, end = broker.offsets(tp)
        while offset < end:
            messages = broker.fetch(tp, offset, READ_BATCH)
            if not messages:
                break
            for message in messages:
                if message.key is None or message.key[:1] == b"\x00":
                    continue          # streamkit's own bookkeeping (window watermarks)
                if message.value is None:
                    raw.pop(message.key, None)
                else:
                    raw[message.key] = message.value
            offset = messages[-1].offset + 1
    load_key, load_value = table.load_key, table.load_value
    contents = {load_key(k): load_value(v) for k, v in raw.items()}
    # (a versioned table's key whose latest version is a delete has nothing to show)
    return {k: v for k, v in contents.items() if v is not DELETED}


def _parse_key(table: Table, text: str) -> list[Any]:
    """The keys ``text`` may stand for, most likely first (as the web views read a key
    in a URL: converted to the table's key type, else JSON or the plain text)."""
    from streamkit.web.tables import ViewError, parse_key
    try:
        return parse_key(table, text)
    except ViewError as exc:
        raise click.ClickException(str(exc)) from None


def _rows_of_key(table: Table, text: str, candidates: list[Any],
                 contents: dict[Any, Any]) -> list[tuple[Any, Any]]:
    """The rows of the first of ``candidates`` the table holds (``text`` was given)."""
    for candidate in candidates:
        if table.window is not None:
            rows = sorted(((k, v) for k, v in contents.items() if k[0] == candidate),
                          key=lambda kv: kv[0][1])
        else:
            rows = [(candidate, contents[candidate])] if candidate in contents else []
        if rows:
            return rows
    raise click.ClickException(f"table {table.name!r} has no key {text!r}")


def _order(stored_key: Any, table: Table) -> tuple[Any, ...]:
    """Keys as the web views order them (numbers, then text, then the rest), then
    windows by time."""
    from streamkit.web.tables import sort_key
    if table.window is not None:
        key, window = stored_key
        return (sort_key(key), window)
    return (sort_key(stored_key),)


def _json_row(table: Table, stored_key: Any, value: Any) -> dict[str, Any]:
    from streamkit.web.status import jsonable
    if table.window is not None:
        key, (start, end) = stored_key
        return {"key": jsonable(key), "window": [start, end], "value": jsonable(value)}
    return {"key": jsonable(stored_key), "value": jsonable(value)}


def _text(value: Any) -> str:
    """A key or value in a cell: text as it is, anything else as JSON."""
    from streamkit.web.status import jsonable
    if isinstance(value, str):
        return value
    return json.dumps(jsonable(value), ensure_ascii=False)


def _when(seconds: float) -> str:
    """Epoch seconds as ``2020-07-01 00:25:00`` (UTC; milliseconds when there are)."""
    when = datetime.fromtimestamp(seconds, tz=UTC)
    spec = "seconds" if float(seconds).is_integer() else "milliseconds"
    return when.replace(tzinfo=None).isoformat(sep=" ", timespec=spec)


def _hashable(key: Any) -> Any:
    """JSON gives lists where the table had tuples (window keys ``(key, (start, end))``)."""
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


TABLE_OPTIONS = [
    click.argument("name"),
    click.argument("key", required=False),
    click.option("--broker", "-b", default=None, help="Broker URL; overrides the app."),
    click.option("--datadir", default=None, help="Data directory; overrides the app."),
    click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                 show_default=True,
                 help="table: a box; json: one object per line (key, window, value)."),
]
