"""Reading tables over HTTP (Kafka Streams' interactive queries, for this worker's share).

``GET /table/{name}`` pages through the keys this worker holds, in a stable order:
numbers (ascending), then strings, then any other key by its JSON text. ``after`` is
the last key of the previous page, parsed like a key. ``GET /table/{name}/{key}``
reads one key; windowed tables answer with the key's windows.
"""
from __future__ import annotations

import heapq
import json
from typing import TYPE_CHECKING, Any

from streamkit.errors import DecodeError
from streamkit.serializers import Serde
from streamkit.web.status import jsonable

if TYPE_CHECKING:
    from streamkit.app import App
    from streamkit.tables.table import Table

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
_MISSING: Any = object()


class ViewError(Exception):
    """An HTTP error with a JSON body ``{"error": message, ...}``."""

    def __init__(self, status: int, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": message, "status": status, **detail}


def find_table(app: App, name: str) -> Table:
    table = app.tables.get(name)
    if table is None:
        raise ViewError(404, f"no table named {name!r}", tables=sorted(app.tables))
    return table


# -- keys --------------------------------------------------------------------------------
def parse_key(table: Table, text: str) -> list[Any]:
    """The keys ``text`` may stand for, most likely first.

    With a ``key_type`` the text is converted to it (``"1"`` -> ``1`` for ``int``) and
    a text that does not convert is a 400. Without one, the text is read as JSON, and
    as the plain string too (so ``/table/t/1`` finds the key ``1`` or ``"1"``)."""
    key_type = table.key_type
    if key_type is None:
        try:
            parsed = _hashable(json.loads(text))
        except ValueError:
            return [text]
        return [parsed] if parsed == text else [parsed, text]
    try:
        return [_hashable(_serde_for(key_type).loads(text.encode()))]
    except DecodeError as exc:
        type_name = getattr(key_type, "__name__", repr(key_type))
        raise ViewError(400, f"table {table.name!r}: key {text!r} is not a valid "
                             f"{type_name}: {exc}", table=table.name) from None


_SERDES: dict[Any, Serde] = {}


def _serde_for(key_type: Any) -> Serde:
    serde = _SERDES.get(key_type)
    if serde is None:
        # URL text is JSON-ish whatever the table's key serializer is on the wire
        serde = _SERDES[key_type] = Serde(key_type, None if key_type in (str, bytes)
                                          else "json")
    return serde


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    if isinstance(key, dict):
        raise ViewError(400, "a table key cannot be a JSON object")
    return key


def sort_key(key: Any) -> tuple[int, Any]:
    """A total order over keys of mixed types: numbers, then strings, then the rest."""
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return (0, key)
    if isinstance(key, str):
        return (1, key)
    return (2, json.dumps(jsonable(key), sort_keys=True))


# -- views -------------------------------------------------------------------------------
def get_key(app: App, name: str, text: str) -> dict[str, Any]:
    """``GET /table/{name}/{key}``."""
    table = find_table(app, name)
    for key in parse_key(table, text):
        if table.window is not None:
            windows = table.window.windows(key)
            if windows:
                return {"table": name, "key": jsonable(key),
                        "value": [window_json(rng, v) for rng, v in windows]}
            continue
        value = _get(table, key)
        if value is not _MISSING:
            return {"table": name, "key": jsonable(key), "value": jsonable(value)}
    raise ViewError(404, f"table {name!r} has no key {text!r} on this worker",
                    table=name, key=text)


def _get(table: Table, key: Any) -> Any:
    try:
        return table.peek(key, _MISSING)
    except TypeError:          # unhashable key
        raise ViewError(400, f"table {table.name!r}: {key!r} cannot be a key") from None


def window_json(rng: tuple[float, float], value: Any) -> dict[str, Any]:
    return {"start": rng[0], "end": rng[1], "value": jsonable(value)}


def list_items(app: App, name: str, limit_text: str | None, after_text: str | None
               ) -> dict[str, Any]:
    """``GET /table/{name}?limit=&after=``: one page of ``{"key", "value"}`` items.

    ``next`` is the ``after`` of the following page (absent on the last page). A page
    costs one pass over the worker's share of the table."""
    table = find_table(app, name)
    limit = parse_limit(limit_text)
    after = None
    if after_text is not None:
        after = sort_key(parse_key(table, after_text)[0])
    if table.window is not None:
        grouped: dict[Any, list[dict[str, Any]]] = {}
        for (key, rng), value in table.items():
            grouped.setdefault(key, []).append(window_json(rng, value))
        pairs: Any = ((k, sorted(w, key=lambda x: x["start"])) for k, w in grouped.items())
    else:
        pairs = table.items()
    if after is not None:
        pairs = ((k, v) for k, v in pairs if sort_key(k) > after)
    page = heapq.nsmallest(limit + 1, pairs, key=lambda kv: sort_key(kv[0]))
    more = len(page) > limit
    page = page[:limit]
    body: dict[str, Any] = {
        "table": name,
        "windowed": table.window is not None,
        "limit": limit,
        "items": [{"key": jsonable(k), "value": jsonable(v)} for k, v in page],
    }
    if more and page:
        body["next"] = _key_text(table, page[-1][0])
    return body


def _key_text(table: Table, key: Any) -> str:
    """A key written as ``after`` reads it back (JSON unless the key type is str)."""
    if isinstance(key, str) and table.key_type is str:
        return key
    return json.dumps(jsonable(key))


def parse_limit(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        raise ViewError(400, f"limit={text!r}: not an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ViewError(400, f"limit={limit}: must be between 1 and {MAX_LIMIT}")
    return limit
