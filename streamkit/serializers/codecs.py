"""Codecs: turn Python objects into bytes and back, looked up by name.

A codec is any object with ``dumps(obj) -> bytes`` and ``loads(data: bytes) -> obj``.
Built-ins: ``json``, ``msgpack``, ``raw`` and ``binary``. Add your own with :func:`register`,
or subclass :class:`Codec` in Faust's form (``_dumps``/``_loads``).

Records are encoded as plain maps of their fields. Values JSON and msgpack cannot hold
natively take one *wire form* each (the Record turns them back when it decodes):

=================  ==========================  ==========================
Python value       json                        msgpack
=================  ==========================  ==========================
datetime/date/time ISO-8601 string             ISO-8601 string
Decimal            string (``"12.30"``)        string
bytes              base64 string               bin (native)
UUID               string                      string
Enum               its ``.value``              its ``.value``
set/frozenset      array                       array
Record             object of its fields        map of its fields
=================  ==========================  ==========================
"""
from __future__ import annotations

import base64
import json
import json.encoder
import json.scanner
import os
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol, cast, runtime_checkable
from uuid import UUID

import msgpack
import msgspec

try:
    import ormsgpack
except ImportError:  # pragma: no cover - ormsgpack is a dependency; stay usable without
    ormsgpack = None  # type: ignore[assignment]  # (mypy types the name as the module)

from streamkit.errors import UnknownCodec

__all__ = ["BinaryCodec", "ChainedCodec", "Codec", "CodecLike", "JSONCodec", "MsgpackCodec",
           "RawCodec", "register", "get", "names", "wire_form", "format_of"]


@runtime_checkable
class CodecLike(Protocol):
    """What a codec is: two functions between Python objects and bytes. Any object
    with these two methods is a codec; :class:`Codec` is a base class for them."""

    def dumps(self, obj: Any) -> bytes:
        """Encode ``obj`` to bytes."""

    def loads(self, data: bytes) -> Any:
        """Decode bytes produced by :meth:`dumps` (or by another producer)."""


class Codec:
    """Base class of codecs, in Faust's form: a subclass defines ``_dumps(obj) ->
    bytes`` and ``_loads(data) -> obj`` (or overrides ``dumps``/``loads`` whole).

    ``a | b`` is a codec that encodes with ``a`` then ``b`` and decodes the other way
    round (``raw_msgpack() | binary()``: msgpack, then base64). A subclass that
    defines no way to encode or none to decode cannot be instantiated: the base
    methods have nothing to call, and a codec that returned ``None`` would send every
    value as a tombstone.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Codec:
        missing = [f"{public}() or {private}()"
                   for public, private in (("dumps", "_dumps"), ("loads", "_loads"))
                   if getattr(cls, public) is getattr(Codec, public)
                   and getattr(cls, private) is getattr(Codec, private)]
        if missing:
            raise TypeError(f"codec class {cls.__qualname__} must define "
                            f"{' and '.join(missing)}")
        return super().__new__(cls)

    def __init__(self, children: tuple[CodecLike, ...] | None = None,
                 **kwargs: Any) -> None:
        #: codecs applied after this one when encoding (before it when decoding)
        self.children: tuple[CodecLike, ...] = tuple(children or ())
        #: the keyword arguments the codec was made with (Faust's ``kwargs``)
        self.kwargs = kwargs

    def _dumps(self, obj: Any) -> bytes:
        raise NotImplementedError(f"{type(self).__qualname__} has no _dumps()")

    def _loads(self, data: bytes) -> Any:
        raise NotImplementedError(f"{type(self).__qualname__} has no _loads()")

    def dumps(self, obj: Any) -> bytes:
        """Encode ``obj``: ``_dumps``, then each of ``children``. A Record reaches
        ``_dumps`` as its ``to_representation()`` (a dict of JSON types), as a Faust
        codec is given a model's."""
        if hasattr(obj, "_streamkit_fields_"):
            obj = obj.to_representation()
        data = self._dumps(obj)
        for child in getattr(self, "children", ()):
            data = child.dumps(data)
        return data

    def loads(self, data: bytes) -> Any:
        """Decode ``data``: the ``children`` in reverse order, then ``_loads``."""
        for child in reversed(getattr(self, "children", ())):
            data = child.loads(data)
        return self._loads(data)

    def __or__(self, other: Any) -> Codec:
        if not _is_codec(other):
            return NotImplemented
        return ChainedCodec(self, other)

    def __ror__(self, other: Any) -> Codec:
        if not _is_codec(other):
            return NotImplemented
        return ChainedCodec(other, self)


def _is_codec(obj: Any) -> bool:
    return not isinstance(obj, type) and callable(getattr(obj, "dumps", None)) \
        and callable(getattr(obj, "loads", None))


class ChainedCodec(Codec):
    """Codecs applied one after the other: what ``a | b`` and ``"a|b"`` give."""

    def __init__(self, *nodes: CodecLike) -> None:
        super().__init__()
        flat: list[CodecLike] = []
        for node in nodes:
            flat.extend(node.nodes if isinstance(node, ChainedCodec) else (node,))
        #: the codecs in encoding order
        self.nodes: tuple[CodecLike, ...] = tuple(flat)

    def dumps(self, obj: Any) -> bytes:
        """Encode with each codec in turn."""
        for node in self.nodes:
            obj = node.dumps(obj)
        return cast(bytes, obj)

    def loads(self, data: bytes) -> Any:
        """Decode with each codec in reverse order."""
        obj: Any = data
        for node in reversed(self.nodes):
            obj = node.loads(obj)
        return obj

    def __repr__(self) -> str:
        return " | ".join(type(node).__name__ for node in self.nodes)


def wire_form(obj: Any) -> Any:
    """The value a codec writes for ``obj`` when the format has no native type for it.

    Used as the ``default`` hook of the json and msgpack encoders, so it only sees
    objects those encoders cannot handle themselves. Records are recognised by their
    ``_streamkit_fields_`` method (no import of the models layer).
    """
    kind = type(obj)
    if kind is datetime or kind is date or kind is time:  # the common case first
        return obj.isoformat()
    fields = getattr(obj, "_streamkit_fields_", None)
    if fields is not None:
        return fields()
    if isinstance(obj, (datetime, date, time)):
        return obj.isoformat()
    if isinstance(obj, (Decimal, UUID)):
        return str(obj)
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} value {obj!r:.80}")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return base64.b64encode(obj).decode("ascii")
    return wire_form(obj)


class JSONCodec(Codec):
    """UTF-8 JSON, compact separators, non-ASCII kept as UTF-8.

    Decoding calls the C scanner directly: ``json.loads`` spends a third of its time
    in Python-level whitespace handling and encoding detection for a 200-byte object.

    ``fast_loads`` decodes with msgspec, about 5x faster and exact (integers of any
    size stay integers); whatever it refuses goes to ``loads`` (decision 005).
    """

    name = "json"

    def __init__(self) -> None:
        self._encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                                        default=_json_default).encode
        # JSONEncoder.encode builds a C encoder on every call; build it once. No
        # circular-reference markers: a self-containing value ends in RecursionError.
        make = getattr(json.encoder, "c_make_encoder", None)   # (not in typeshed)
        self._c_encode = make(None, _json_default, json.encoder.encode_basestring,
                              None, ":", ",", False, False, True) if make else None
        self._decoder = json.JSONDecoder()
        # (typeshed types make_scanner's context as a make_scanner; it is the decoder)
        self._scan = json.scanner.make_scanner(self._decoder)  # type: ignore[arg-type]
        #: msgspec's decoder; on anything it refuses (NaN, lone surrogates, numbers
        #: past a float's range, bad JSON) the Serde retries with ``loads``, which
        #: gives the standard library's result or error message (decision 005)
        self.fast_loads = msgspec.json.Decoder().decode

    def dumps(self, obj: Any) -> bytes:
        """Encode ``obj`` as UTF-8 JSON bytes."""
        if self._c_encode is not None:
            return "".join(self._c_encode(obj, 0)).encode()
        return self._encode(obj).encode()

    def loads(self, data: bytes | bytearray | memoryview | str) -> Any:
        """Decode UTF-8 JSON bytes (or a str)."""
        text = data.decode() if type(data) is bytes else (
            data if type(data) is str else bytes(cast("bytes | bytearray | memoryview",
                                                      data)).decode())
        try:
            obj, end = self._scan(text, 0)
        except StopIteration:
            # Leading whitespace or no value: let the full decoder say which.
            return self._decoder.decode(text)
        if end != len(text):
            return self._decoder.decode(text)  # trailing whitespace, or "Extra data"
        return obj


class MsgpackCodec(Codec):
    """MessagePack: maps with str keys, bin for bytes, ISO strings for datetimes.

    Datetimes use the ISO string wire form rather than msgpack's timestamp extension
    because the extension cannot hold naive datetimes and other readers of the topic
    (JSON tools, other languages) read strings everywhere.
    """

    name = "msgpack"

    def __init__(self) -> None:
        self._packer = msgpack.Packer(default=wire_form)
        self._unpackb = msgpack.unpackb
        #: str map keys only, no ext types (fails on what only ``loads`` accepts).
        self.fast_loads = msgpack.unpackb
        if ormsgpack is not None:
            self.fast_loads, self.fast_loads_many = _strict_ormsgpack_loads()

    def dumps(self, obj: Any) -> bytes:
        """Encode ``obj`` as msgpack bytes."""
        return self._packer.pack(obj)

    def loads(self, data: bytes) -> Any:
        """Decode msgpack bytes (exactly one object)."""
        try:
            return self._unpackb(data)
        except ValueError as exc:
            # Non-str map keys (dict[int, ...] fields): allowed, but only on this
            # slower retry so str-keyed maps pay nothing for the keyword argument.
            if "map key" not in str(exc):
                raise
            return self._unpackb(data, strict_map_key=False)


def _strict_ormsgpack_loads() -> tuple[Callable[[bytes], Any],
                                       Callable[[list[bytes | None]], list[Any]]]:
    """ormsgpack's decoder (about twice as fast as msgpack's), made strict: a function
    for a batch (no Python call per payload) and one for a single payload.

    ormsgpack ignores bytes after the first object, where msgpack raises ExtraData.
    Each payload is decoded as the first item of a two-item array whose last item is a
    random per-process marker: a payload with trailing bytes, or one cut short, moves
    the marker, and the check fails (the caller then decodes the payload with msgpack,
    which names the error). See docs/decisions/006-ormsgpack.md.
    """
    marker = os.urandom(8)
    suffix = msgpack.packb(marker)
    unpackb = ormsgpack.unpackb

    def fast_loads_many(datas: list[bytes | None]) -> list[Any]:
        """Decode a batch; ``None`` (no payload) stays ``None``. A payload that is
        msgpack nil fails here, so that ``None`` in the result only means no payload."""
        out: list[Any] = []
        append = out.append
        for data in datas:
            if data is None:
                append(None)
                continue
            obj, last = unpackb(b"\x92" + data + suffix)
            if last != marker or obj is None:
                raise ValueError("extra or missing bytes around the msgpack object, "
                                 "or nil")
            append(obj)
        return out

    def fast_loads(data: bytes) -> Any:
        return fast_loads_many([data])[0]
    return fast_loads, fast_loads_many


class RawCodec(Codec):
    """Bytes pass through unchanged; str is encoded as UTF-8."""

    name = "raw"

    def dumps(self, obj: Any) -> bytes:
        """``bytes`` as they are, ``str`` as UTF-8, bytearray/memoryview copied."""
        if type(obj) is bytes:
            return obj
        if isinstance(obj, str):
            return obj.encode()
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return bytes(obj)
        raise TypeError(f"raw codec encodes bytes or str, got {type(obj).__name__} "
                        f"{obj!r:.80}")

    def loads(self, data: bytes) -> bytes:
        """The bytes, unchanged."""
        return data


class BinaryCodec(Codec):
    """Base64 (not URL-safe), Faust's ``binary``: for chaining after a codec whose
    bytes must travel as text (``"msgpack|binary"``)."""

    name = "binary"

    def _dumps(self, obj: Any) -> bytes:
        return base64.b64encode(obj.encode() if isinstance(obj, str) else obj)

    def _loads(self, data: bytes) -> bytes:
        return base64.b64decode(data)


_registry: dict[str, CodecLike] = {}


def register(name: str, codec: CodecLike | type[CodecLike]) -> None:
    """Make ``codec`` available as ``serializer=name`` (replaces an earlier one).

    ``codec`` is an object with ``dumps`` and ``loads`` (a :class:`Codec` subclass
    may define Faust's ``_dumps``/``_loads`` instead), or a class of such objects
    (instantiated once, with no arguments).
    """
    instance = codec() if isinstance(codec, type) else codec
    if not _is_codec(instance):
        raise TypeError(f"codec {name!r} must have dumps(obj) and loads(data) methods, "
                        f"got {instance!r}")
    _registry[name] = instance


def get(name: str | CodecLike) -> CodecLike:
    """The codec registered as ``name``; a codec object is returned as it is.

    ``"a|b"`` is the registered codecs ``a`` and ``b`` chained (``a`` encodes first),
    as in Faust.
    """
    try:
        # (a codec object is tried as a key too: it is in no registry, and an
        # unhashable one raises TypeError)
        return _registry[name]  # type: ignore[index]
    except KeyError:
        pass
    except TypeError:  # unhashable: not a name
        pass
    if not isinstance(name, str) and isinstance(name, CodecLike):
        return name
    if isinstance(name, str) and "|" in name:
        return ChainedCodec(*(get(part.strip()) for part in name.split("|")))
    # "avro" is registered by importing streamkit.avro, which nothing imports for the
    # app (not even the command line: it costs every start tens of milliseconds)
    hint = ("import streamkit.avro to register it" if name == "avro"
            else "add one with streamkit.serializers.codecs.register")
    raise UnknownCodec(f"unknown serializer {name!r}; known serializers: "
                       f"{', '.join(sorted(_registry))} ({hint})")


def format_of(codec: Any) -> str | None:
    """``"json"`` or ``"msgpack"`` for the built-in codecs of those formats (whose
    payloads msgspec may decode straight into a Record), else None."""
    kind = type(codec)
    if kind is JSONCodec:
        return "json"
    if kind is MsgpackCodec:
        return "msgpack"
    return None


def names() -> list[str]:
    """Names of the registered codecs, sorted."""
    return sorted(_registry)


register("json", JSONCodec())
register("msgpack", MsgpackCodec())
register("raw", RawCodec())
register("binary", BinaryCodec())
