"""Avro schemas: parse, validate, normalize, and derive one from a streamkit Record.

A :class:`Schema` is immutable and compares equal to another when their normalized JSON
is equal (same types, names, defaults, field order; whitespace and the order of keys
inside a JSON object do not matter). That normalized text is what the registry stores
and what "the same schema registered twice" means.
"""
from __future__ import annotations

import copy
import enum
import functools
import json
import operator
import types
import typing
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import fastavro

from streamkit.errors import InvalidSchema

__all__ = ["Schema", "schema_for", "record_datum_builder"]

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes",
                        "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})

# Key order of normalized schema JSON: the order people write Avro in, so that stored
# schemas read naturally; keys not listed follow in alphabetical order.
_KEY_ORDER = {k: i for i, k in enumerate(
    ["type", "name", "namespace", "doc", "aliases", "fields", "symbols", "items",
     "values", "size", "default", "order", "logicalType", "precision", "scale"])}


def _normalize(node: Any) -> Any:
    """Same schema, canonical JSON shape: ``{"type": "string"}`` -> ``"string"``,
    object keys in a fixed order."""
    if isinstance(node, list):
        return [_normalize(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key in sorted(node, key=lambda k: (_KEY_ORDER.get(k, len(_KEY_ORDER)), k)):
        value = node[key]
        if key in ("type", "items", "values"):
            value = _normalize(value)
        elif key == "fields" and isinstance(value, list):
            value = [_normalize_field(f) for f in value]
        out[key] = value
    if set(out) == {"type"} and (not isinstance(out["type"], str) or out["type"] in PRIMITIVES):
        return out["type"]       # {"type": "int"} is "int"; {"type": {...}} is {...}
    return out


def _normalize_field(field: Any) -> Any:
    if not isinstance(field, dict):
        return field
    out = {}
    for key in sorted(field, key=lambda k: (_KEY_ORDER.get(k, len(_KEY_ORDER)), k)):
        out[key] = _normalize(field[key]) if key == "type" else field[key]
    # "name" reads best first in a field
    return {"name": out.pop("name"), **out} if "name" in out else out


class Schema:
    """An Avro schema, validated by fastavro.

    ``Schema.parse`` accepts JSON text, a path to an ``.avsc`` file, a dict/list, or a
    Schema. ``str(schema)`` is the normalized JSON the registry stores.
    """

    __slots__ = ("definition", "canonical", "parsed", "named")

    definition: Any       # the normalized JSON value
    canonical: str        # compact JSON text of ``definition``
    parsed: Any           # fastavro's parsed form (full names, for reading/writing)
    named: dict[str, Any]  # full name -> parsed named type

    def __init__(self, definition: Any) -> None:
        normalized = _normalize(copy.deepcopy(definition))
        named: dict[str, Any] = {}
        try:
            parsed = fastavro.parse_schema(copy.deepcopy(normalized), named_schemas=named)
        except Exception as exc:  # noqa: BLE001 - fastavro raises several unrelated types
            raise InvalidSchema(f"invalid Avro schema: {exc}") from None
        _check_union_defaults(parsed, named)
        object.__setattr__(self, "definition", normalized)
        object.__setattr__(self, "canonical", json.dumps(normalized, separators=(",", ":")))
        object.__setattr__(self, "parsed", parsed)
        object.__setattr__(self, "named", named)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Schema is immutable")

    @classmethod
    def parse(cls, source: str | Path | Mapping[str, Any] | list[Any] | Schema) -> Schema:
        """A Schema from JSON text, a path to an ``.avsc`` file, a dict/list, or a Schema."""
        if isinstance(source, Schema):
            return source
        if isinstance(source, Path):
            return cls(_load_json(source.read_text(), where=str(source)))
        if isinstance(source, str):
            text = source.strip()
            if text[:1] in ("{", "[", '"'):
                return cls(_load_json(text, where="schema text"))
            if text in PRIMITIVES:
                return cls(text)
            path = Path(text)
            if path.is_file():
                return cls(_load_json(path.read_text(), where=str(path)))
            raise InvalidSchema(f"schema {text[:80]!r} is neither Avro JSON nor an "
                                "existing .avsc file")
        if isinstance(source, (Mapping, list)):
            return cls(dict(source) if isinstance(source, Mapping) else source)
        raise InvalidSchema(f"cannot make an Avro schema from {type(source).__name__}")

    @classmethod
    def from_record(cls, record_type: type) -> Schema:
        """The schema of a streamkit Record class (see :func:`schema_for`)."""
        return schema_for(record_type)

    @property
    def type(self) -> str:
        """The top-level Avro type: ``record``, ``string``, ``union``..."""
        d = self.definition
        if isinstance(d, list):
            return "union"
        return d if isinstance(d, str) else d["type"]

    @property
    def fullname(self) -> str | None:
        """``namespace.name`` of a named top-level type, else None."""
        p = self.parsed
        return p.get("name") if isinstance(p, dict) and p.get("type") in NAMED else None

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.definition, indent=indent)

    def __str__(self) -> str:
        return self.canonical

    def __repr__(self) -> str:
        return f"Schema({self.canonical[:120]})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and other.canonical == self.canonical

    def __hash__(self) -> int:
        return hash(self.canonical)


def _load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidSchema(f"{where} is not valid JSON: {exc}") from None


def _check_union_defaults(parsed: Any, named: dict[str, Any], path: str = "") -> None:
    """Avro requires a union field's default to match the union's *first* branch;
    fastavro accepts any branch, Confluent's registry (Java Avro) does not."""
    seen: set[str] = set()

    def walk(node: Any, where: str) -> None:
        if isinstance(node, list):
            for i, branch in enumerate(node):
                walk(branch, f"{where}/{i}")
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind in ("record", "error"):
            if node["name"] in seen:
                return
            seen.add(node["name"])
            for i, field in enumerate(node["fields"]):
                ftype = field["type"]
                if isinstance(ftype, list) and "default" in field and ftype and \
                        not _matches_primitive(field["default"], ftype[0]):
                    raise InvalidSchema(
                        f"invalid Avro schema: field {field['name']!r} of record "
                        f"{node['name']!r} has default {field['default']!r}, which does "
                        f"not match the first branch {_short(ftype[0])!r} of its union "
                        "(Avro requires it to)")
                walk(ftype, f"{where}/fields/{i}/type")
        elif kind == "array":
            walk(node["items"], f"{where}/items")
        elif kind == "map":
            walk(node["values"], f"{where}/values")

    walk(parsed, path)


def _matches_primitive(value: Any, branch: Any) -> bool:
    """Whether a JSON default fits a primitive union branch (other branches: True,
    fastavro has checked the default fits some branch)."""
    kind = branch.get("type") if isinstance(branch, dict) else branch
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("int", "long"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in ("float", "double"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind in ("string", "bytes"):
        return isinstance(value, str)
    return True


def _short(node: Any) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return "union[" + ", ".join(_short(n) for n in node) + "]"
    if node.get("type") in NAMED:
        return f"{node['type']} {node['name']}"
    if node.get("logicalType"):
        return f"{node['type']}({node['logicalType']})"
    return str(node.get("type"))


# -- deriving a schema from a Record -------------------------------------------------

_SCHEMA_CACHE: dict[type, Schema] = {}
_BUILDER_CACHE: dict[type, Callable[[Any], dict[str, Any]]] = {}

_SIMPLE: dict[Any, Any] = {
    # Python ints are 64-bit in practice and Python floats are doubles: map them to
    # long/double so a derived schema round-trips every value. Write an explicit
    # schema with "int"/"float" for the smaller Avro encodings.
    int: "long", float: "double", str: "string", bytes: "bytes", bool: "boolean",
    type(None): "null",
    datetime: {"type": "long", "logicalType": "timestamp-micros"},
    date: {"type": "int", "logicalType": "date"},
    time: {"type": "long", "logicalType": "time-micros"},
    UUID: {"type": "string", "logicalType": "uuid"},
    # Decimal has no precision/scale in a Python annotation, which Avro's decimal needs:
    # carry it as its exact string form.
    Decimal: "string",
}


def _is_record(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "_fields") and hasattr(tp, "from_data")


def _fields_of(record_type: type) -> list[tuple[str, Any, bool, Any]]:
    """(name, annotation, required, default) of each field, in declaration order."""
    out = []
    for name, desc in record_type._fields.items():  # type: ignore[attr-defined]
        out.append((getattr(desc, "field", name), desc.type,
                    bool(getattr(desc, "required", True)), getattr(desc, "default", None)))
    return out


def _optional_inner(tp: Any) -> tuple[Any, bool]:
    """(X, True) for ``X | None`` / ``Optional[X]``, else (tp, False)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) < len(typing.get_args(tp)):
            inner = args[0] if len(args) == 1 else functools.reduce(operator.or_, args)
            return inner, True
    return tp, False


def _avro_type(tp: Any, owner: str, fname: str, defined: set[str]) -> Any:
    if tp in _SIMPLE:
        return copy.deepcopy(_SIMPLE[tp])
    if tp is Any or tp is typing.Any:
        raise InvalidSchema(f"{owner}.{fname}: cannot derive an Avro type from Any; "
                            "give the Record an explicit __avro_schema__")
    inner, optional = _optional_inner(tp)
    if optional:
        return ["null", _avro_type(inner, owner, fname, defined)]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return [_avro_type(a, owner, fname, defined) for a in args]
    if origin in (list, set, frozenset, tuple) or tp in (list, set, frozenset, tuple):
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            args = args[:1]
        if not args or len(args) != 1:
            raise InvalidSchema(f"{owner}.{fname}: annotate sequences with their item "
                                "type, e.g. list[int]")
        return {"type": "array", "items": _avro_type(args[0], owner, fname, defined)}
    if origin in (dict, Mapping) or tp is dict:
        if len(args) != 2 or args[0] is not str:
            raise InvalidSchema(f"{owner}.{fname}: Avro maps have string keys; annotate "
                                "as dict[str, X]")
        return {"type": "map", "values": _avro_type(args[1], owner, fname, defined)}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if tp.__name__ in defined:
            return tp.__name__
        defined.add(tp.__name__)
        return {"type": "enum", "name": tp.__name__, "symbols": [m.name for m in tp]}
    if _is_record(tp):
        if tp.__name__ in defined:
            return tp.__name__
        return _record_definition(tp, defined)
    raise InvalidSchema(f"{owner}.{fname}: no Avro type for annotation {tp!r}")


def _default_json(value: Any) -> tuple[bool, Any]:
    """(usable, JSON form) of a field default for the schema's "default"."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True, value
    if isinstance(value, enum.Enum):
        return True, value.name
    if isinstance(value, Decimal):
        return True, str(value)
    if isinstance(value, (list, dict)) and not value:
        return True, value
    return False, None


def _record_definition(record_type: type, defined: set[str]) -> dict[str, Any]:
    name = record_type.__name__
    defined.add(name)
    fields = []
    for fname, annotation, required, default in _fields_of(record_type):
        ftype = _avro_type(annotation, name, fname, defined)
        field: dict[str, Any] = {"name": fname, "type": ftype}
        if not required:
            usable, value = _default_json(default)
            if usable:
                if isinstance(ftype, list) and value is not None and ftype[0] == "null":
                    # the default must match the union's first branch
                    ftype.append(ftype.pop(0))
                field["default"] = value
        fields.append(field)
    definition: dict[str, Any] = {"type": "record", "name": name, "fields": fields}
    namespace = _explicit_namespace(record_type)
    if namespace:
        definition["namespace"] = namespace
    return definition


def _explicit_namespace(record_type: type) -> str | None:
    """The Avro namespace of a Record declared with ``namespace="a.b"`` (or
    ``namespace="a.b.Name"``). The default namespace, ``module.QualName``, is not used:
    it changes when the same class is run as ``__main__``, and Avro resolves records by
    name, so the bare class name is the stable choice."""
    options = getattr(record_type, "_options", None)
    namespace = getattr(options, "namespace", None)
    if not namespace or namespace == f"{record_type.__module__}.{record_type.__qualname__}":
        return None
    head, _, last = namespace.rpartition(".")
    return head or None if last == record_type.__name__ else namespace


def schema_for(record_type: type) -> Schema:
    """The Avro schema of a Record class.

    An explicit ``__avro_schema__`` class attribute (a Schema, JSON text, dict, or .avsc
    path) wins; otherwise the schema is derived from ``Record._fields``: record name =
    class name (namespace from the Record's ``namespace=`` option if given), int -> long,
    float -> double, str -> string, datetime -> long/timestamp-micros, Decimal -> string,
    ``X | None`` -> ["null", X], list[X] -> array, dict[str, X] -> map, nested Records
    -> nested records, Enums -> enums. Fields with a default get it in the schema.
    """
    cached = _SCHEMA_CACHE.get(record_type)
    if cached is not None:
        return cached
    explicit = record_type.__dict__.get("__avro_schema__")
    if explicit is not None:
        schema = Schema.parse(explicit)
    elif _is_record(record_type):
        schema = Schema(_record_definition(record_type, set()))
    else:
        raise InvalidSchema(f"{record_type!r} is not a streamkit Record; pass an explicit "
                            "Avro schema")
    _SCHEMA_CACHE[record_type] = schema
    return schema


# -- Record -> Avro datum ----------------------------------------------------------

def _converter(tp: Any) -> Callable[[Any], Any] | None:
    """A function making a value of annotation ``tp`` writable by fastavro under the
    derived schema, or None when the value is already writable as it is."""
    inner, optional = _optional_inner(tp)
    if optional:
        inner_conv = _converter(inner)
        if inner_conv is None:
            return None
        return lambda v: None if v is None else inner_conv(v)
    if tp is Decimal:
        return str
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return lambda v: v.name if isinstance(v, enum.Enum) else v
    if _is_record(tp):
        return lambda v: record_datum_builder(type(v))(v) if _is_record(type(v)) else v
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, set, frozenset, tuple) and args:
        item_conv = _converter(args[0])
        if item_conv is None:
            return None if origin is list else list
        return lambda v: [item_conv(x) for x in v]
    if origin in (dict, Mapping) and len(args) == 2:
        value_conv = _converter(args[1])
        if value_conv is None:
            return None
        return lambda v: {k: value_conv(x) for k, x in v.items()}
    return None


def _generic_datum(value: Any) -> Any:
    """Datum for an explicit schema: Records become dicts, Enums their names."""
    if _is_record(type(value)):
        return {name: _generic_datum(getattr(value, name))
                for name, *_ in _fields_of(type(value))}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, list):
        return [_generic_datum(v) for v in value]
    if isinstance(value, dict):
        return {k: _generic_datum(v) for k, v in value.items()}
    return value


def record_datum_builder(record_type: type) -> Callable[[Any], dict[str, Any]]:
    """A function turning an instance of ``record_type`` into the dict fastavro writes."""
    builder = _BUILDER_CACHE.get(record_type)
    if builder is not None:
        return builder
    if "__avro_schema__" in record_type.__dict__:
        builder = _generic_datum
    else:
        plan = [(name, _converter(annotation))
                for name, annotation, *_ in _fields_of(record_type)]
        fast = getattr(record_type, "_streamkit_fields_", None)
        if fast is not None and all(conv is None for _, conv in plan):
            # every value is writable as it is: hand fastavro the field dict
            _BUILDER_CACHE[record_type] = fast
            return fast

        def builder(obj: Any) -> dict[str, Any]:
            return {name: (getattr(obj, name) if conv is None else conv(getattr(obj, name)))
                    for name, conv in plan}
    _BUILDER_CACHE[record_type] = builder
    return builder
