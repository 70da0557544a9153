"""Schema compatibility by Avro's schema-resolution rules, per registry mode.

``can_read(reader, writer)`` lists every reason data written with ``writer`` cannot be
read with ``reader``: the same rules fastavro (and Java Avro) apply when decoding:

- records match by unqualified name (or a reader alias); a reader field absent from the
  writer needs a default; a writer field absent from the reader is skipped;
- promotions: int -> long, float, double; long -> float, double; float -> double;
  string <-> bytes;
- enums: every writer symbol must be a reader symbol, unless the reader has a default;
- fixed: same size; arrays/maps: items/values must resolve;
- unions: every branch the writer may use must resolve against the reader.

Modes say who reads whom: BACKWARD = the new schema reads data of the previous one,
FORWARD = the previous schema reads data of the new one, FULL = both; the _TRANSITIVE
variants check every earlier version instead of only the latest; NONE checks nothing.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streamkit.avro.schema import PRIMITIVES, Schema, _short
from streamkit.errors import InvalidCompatibilityLevel

__all__ = ["LEVELS", "Incompatibility", "can_read", "check_level", "validate_level"]

LEVELS = ("NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
          "FULL", "FULL_TRANSITIVE")

_PROMOTIONS = {
    ("int", "long"), ("int", "float"), ("int", "double"),
    ("long", "float"), ("long", "double"), ("float", "double"),
    ("string", "bytes"), ("bytes", "string"),
}


@dataclass(frozen=True)
class Incompatibility:
    """One reason a reader schema cannot read a writer schema."""

    rule: str       # TYPE_MISMATCH, READER_FIELD_MISSING_DEFAULT_VALUE, NAME_MISMATCH, ...
    path: str       # JSON pointer into the reader schema, e.g. /fields/0/type
    field: str | None   # dotted field name, e.g. RideRecord.vendor_id
    detail: str     # what the reader and writer have there

    def describe(self) -> str:
        where = f"field '{self.field}'" if self.field else "the schema"
        return f"{where} at {self.path or '/'}: {self.detail} ({self.rule})"


def validate_level(level: str) -> str:
    """``level`` upper-cased, or InvalidCompatibilityLevel."""
    norm = str(level).strip().upper()
    if norm not in LEVELS:
        raise InvalidCompatibilityLevel(
            f"Invalid compatibility level {level!r}: use one of {', '.join(LEVELS)}")
    return norm


def can_read(reader: Schema, writer: Schema) -> list[Incompatibility]:
    """Every reason data written with ``writer`` cannot be read with ``reader``
    (empty when it can)."""
    return _Checker(reader.named, writer.named).check(reader.parsed, writer.parsed, "", None)


def check_level(new: Schema, existing: Sequence[tuple[int, Schema]],
                level: str) -> list[str]:
    """Messages for each way ``new`` breaks ``level`` against the ``existing``
    (version, schema) pairs, oldest first, soft-deleted ones already left out.
    Empty when ``new`` may be registered."""
    level = validate_level(level)
    if level == "NONE" or not existing:
        return []
    against = existing if level.endswith("_TRANSITIVE") else existing[-1:]
    mode = level.removesuffix("_TRANSITIVE")
    messages = []
    for version, old in reversed(against):
        if mode in ("BACKWARD", "FULL"):
            for inc in can_read(new, old):
                messages.append(f"{level}: the new schema cannot read data written with "
                                f"version {version}: {inc.describe()}")
        if mode in ("FORWARD", "FULL"):
            for inc in can_read(old, new):
                messages.append(f"{level}: version {version} cannot read data written "
                                f"with the new schema: {inc.describe()}")
    return messages


class _Checker:
    def __init__(self, reader_named: dict[str, Any], writer_named: dict[str, Any]) -> None:
        self.rnamed = reader_named
        self.wnamed = writer_named
        self.active: set[tuple[str, str]] = set()   # record pairs being checked (cycles)

    def check(self, reader: Any, writer: Any, path: str,
              field: str | None) -> list[Incompatibility]:
        r = self._resolve(reader, self.rnamed)
        w = self._resolve(writer, self.wnamed)
        rk, wk = _kind(r), _kind(w)
        if wk == "union":
            out = []
            for branch in w:
                out.extend(self.check(r, branch, path, field))
            return out
        if rk == "union":
            for branch in r:
                if not self.check(branch, w, path, field):
                    return []
            return [Incompatibility(
                "MISSING_UNION_BRANCH", path, field,
                f"reader union {_short(r)} has no branch that can read writer type "
                f"{_short(w)}")]
        if rk == wk:
            if rk in PRIMITIVES:
                return []
            return getattr(self, f"_{rk}")(r, w, path, field)
        if (wk, rk) in _PROMOTIONS:
            return []
        return [Incompatibility("TYPE_MISMATCH", path, field,
                                f"reader type {_short(r)} cannot read writer type {_short(w)}")]

    @staticmethod
    def _resolve(node: Any, named: dict[str, Any]) -> Any:
        while isinstance(node, str) and node not in PRIMITIVES and node in named:
            node = named[node]
        while isinstance(node, dict) and isinstance(node.get("type"), (dict, list)):
            node = node["type"]
        return node

    def _names_match(self, r: dict[str, Any], w: dict[str, Any], path: str,
                     field: str | None) -> list[Incompatibility]:
        rname, wname = r["name"], w["name"]
        r_unq, w_unq = rname.rsplit(".", 1)[-1], wname.rsplit(".", 1)[-1]
        aliases = set(r.get("aliases", []))
        if r_unq == w_unq or wname in aliases or w_unq in aliases:
            return []
        return [Incompatibility("NAME_MISMATCH", path, field,
                                f"reader {r['type']} is named {rname!r}, writer's {wname!r}")]

    def _record(self, r: dict[str, Any], w: dict[str, Any], path: str,
                field: str | None) -> list[Incompatibility]:
        bad = self._names_match(r, w, path, field)
        if bad:
            return bad
        key = (r["name"], w["name"])
        if key in self.active:
            return []
        self.active.add(key)
        try:
            out: list[Incompatibility] = []
            by_name = {f["name"]: f for f in w["fields"]}
            rec = r["name"].rsplit(".", 1)[-1]
            for i, rf in enumerate(r["fields"]):
                fname = f"{rec}.{rf['name']}"
                wf = by_name.get(rf["name"])
                if wf is None:
                    wf = next((by_name[a] for a in rf.get("aliases", []) if a in by_name),
                              None)
                if wf is None:
                    if "default" not in rf:
                        out.append(Incompatibility(
                            "READER_FIELD_MISSING_DEFAULT_VALUE", f"{path}/fields/{i}", fname,
                            f"the reader has field {rf['name']!r} with no default and the "
                            "writer does not write it"))
                    continue
                out.extend(self.check(rf["type"], wf["type"], f"{path}/fields/{i}/type",
                                      fname))
            return out
        finally:
            self.active.discard(key)

    def _enum(self, r: dict[str, Any], w: dict[str, Any], path: str,
              field: str | None) -> list[Incompatibility]:
        bad = self._names_match(r, w, path, field)
        if bad:
            return bad
        missing = [s for s in w["symbols"] if s not in set(r["symbols"])]
        if missing and "default" not in r:
            return [Incompatibility("MISSING_ENUM_SYMBOLS", f"{path}/symbols", field,
                                    f"the reader enum {r['name']!r} lacks writer symbols "
                                    f"{missing} and has no default")]
        return []

    def _fixed(self, r: dict[str, Any], w: dict[str, Any], path: str,
               field: str | None) -> list[Incompatibility]:
        bad = self._names_match(r, w, path, field)
        if bad:
            return bad
        if r["size"] != w["size"]:
            return [Incompatibility("FIXED_SIZE_MISMATCH", f"{path}/size", field,
                                    f"reader fixed size {r['size']}, writer's {w['size']}")]
        return []

    def _array(self, r: dict[str, Any], w: dict[str, Any], path: str,
               field: str | None) -> list[Incompatibility]:
        return self.check(r["items"], w["items"], f"{path}/items", field)

    def _map(self, r: dict[str, Any], w: dict[str, Any], path: str,
             field: str | None) -> list[Incompatibility]:
        return self.check(r["values"], w["values"], f"{path}/values", field)


def _kind(node: Any) -> str:
    if isinstance(node, list):
        return "union"
    if isinstance(node, str):
        return node
    kind = node["type"]
    return "record" if kind == "error" else kind

