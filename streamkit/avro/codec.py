"""The "avro" codec: Avro binary in Confluent's wire framing.

Every value is ``b"\\x00"`` (magic byte), the schema id as 4 bytes big-endian, then the
schemaless Avro body, exactly what Confluent's ``AvroSerializer`` writes, so either side
reads the other's records. The writer's schema is registered in a schema registry under a
subject (``<topic>-value`` / ``<topic>-key`` once the codec is bound to a topic, else the
record's full name as in Confluent's RecordNameStrategy) and looked up by id on read.
"""
from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterable
from typing import Any, Protocol

import fastavro

from streamkit.avro.schema import (Schema, _generic_datum, _is_record, record_datum_builder,
                                   schema_for)
from streamkit.errors import DecodeError, SchemaRegistryError

__all__ = ["MAGIC_BYTE", "AvroCodec", "SchemaStore", "default_registry", "frame",
           "unframe", "use_registry"]

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")


class SchemaStore(Protocol):
    """What the codec needs of a registry (the embedded one or an HTTP client)."""

    def register_id(self, subject: str, schema: Schema) -> int:
        """The id of ``schema`` under ``subject``, registering it if new."""

    def schema_by_id(self, schema_id: int) -> Schema:
        """The schema with this global id."""


def frame(schema_id: int, body: bytes) -> bytes:
    """Confluent framing: magic byte 0, 4-byte big-endian schema id, Avro body."""
    return _HEADER.pack(MAGIC_BYTE, schema_id) + body


def unframe(data: bytes) -> tuple[int, memoryview]:
    """(schema id, Avro body) of a Confluent-framed value."""
    if data is None or len(data) < 5:
        raise DecodeError(f"not Confluent-framed Avro: {len(data or b'')} bytes, need at "
                          "least 5 (magic byte + schema id)")
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC_BYTE:
        raise DecodeError(f"not Confluent-framed Avro: first byte is {magic & 0xff:#04x}, "
                          "expected 0x00")
    return schema_id, memoryview(data)[5:]


class AvroCodec:
    """Encode Records (or dicts, with an explicit schema) as framed Avro.

    ``schema``: the writer schema for ``dumps`` and the reader schema for ``loads`` (data
    written with another registered schema is resolved into it by Avro's rules). Without
    one, the schema comes from the Record being written (``schema_for``) and ``loads``
    reads with the writer's schema. ``record_type``: ``loads`` returns instances of it
    (via ``from_data``) instead of dicts; its schema is the reader schema.
    ``registry``: a SchemaStore; default :func:`default_registry`.
    ``subject``: where ``dumps`` registers; see :meth:`bind`.
    """

    def __init__(self, schema: Any = None, *, record_type: type | None = None,
                 registry: SchemaStore | None = None, subject: str | None = None) -> None:
        self.schema = Schema.parse(schema) if schema is not None else (
            schema_for(record_type) if record_type is not None else None)
        self.record_type = record_type
        self._registry = registry
        self.subject = subject
        self._ids: dict[tuple[str, str], int] = {}
        self._writers: dict[int, Schema] = {}
        self._builders: dict[type, Any] = {}
        self._seen_default: SchemaStore | None = None

    # -- configuration --------------------------------------------------------------
    @property
    def registry(self) -> SchemaStore:
        """The explicit registry, else the current default one."""
        if self._registry is not None:
            return self._registry
        current = default_registry()
        self._follow(current)
        return current

    def _follow(self, current: SchemaStore | None) -> None:
        # Ids are per registry: when the default registry changes, forget the ids and
        # writer schemas learnt from the previous one.
        if current is not self._seen_default:
            self._ids.clear()
            self._writers.clear()
            self._seen_default = current

    def bind(self, topic: str, *, is_key: bool = False) -> AvroCodec:
        """A codec for one topic: registers under ``<topic>-key`` or ``<topic>-value``
        (Confluent's TopicNameStrategy, the default of its serializers)."""
        return AvroCodec(self.schema, record_type=self.record_type,
                         registry=self._registry,
                         subject=f"{topic}-{'key' if is_key else 'value'}")

    # -- encode ---------------------------------------------------------------------
    def dumps(self, obj: Any) -> bytes:
        """One value as framed Avro."""
        if self._registry is None and _default is not self._seen_default:
            self._follow(_default)
        schema, datum = self._schema_and_datum(obj)
        schema_id = self._schema_id(schema)
        buf = io.BytesIO()
        buf.write(_HEADER.pack(MAGIC_BYTE, schema_id))
        try:
            fastavro.schemaless_writer(buf, schema.parsed, datum)
        except Exception as exc:
            raise SchemaRegistryError(f"cannot encode {type(obj).__name__} with Avro schema "
                                      f"{schema.fullname or schema.type}: {exc}") from None
        return buf.getvalue()

    def dumps_many(self, objs: Iterable[Any]) -> list[bytes]:
        return [self.dumps(o) for o in objs]

    def _schema_and_datum(self, obj: Any) -> tuple[Schema, Any]:
        kind = type(obj)
        if self.schema is None:
            if not _is_record(kind):
                raise SchemaRegistryError(
                    f"the avro codec got a {kind.__name__} and has no schema for it: write "
                    "a streamkit Record, or use AvroCodec(schema=...) for plain values")
            return schema_for(kind), record_datum_builder(kind)(obj)
        if not _is_record(kind):
            return self.schema, obj
        build = self._builders.get(kind)
        if build is None:
            # a Record written with another (explicit) schema: fields by name
            build = self._builders[kind] = record_datum_builder(kind) \
                if schema_for(kind) == self.schema else _generic_datum
        return self.schema, build(obj)

    def _schema_id(self, schema: Schema) -> int:
        subject = self.subject or schema.fullname
        if subject is None:
            raise SchemaRegistryError(
                f"no subject to register the {schema.type} schema under: bind the codec "
                "to a topic (codec.bind(topic)) or pass subject=")
        key = (subject, schema.canonical)
        schema_id = self._ids.get(key)
        if schema_id is None:
            schema_id = self._ids[key] = self.registry.register_id(subject, schema)
            self._writers.setdefault(schema_id, schema)
        return schema_id

    # -- decode ---------------------------------------------------------------------
    def loads(self, data: bytes) -> Any:
        """One framed Avro value as a dict (or ``record_type`` instance)."""
        if self._registry is None and _default is not self._seen_default:
            self._follow(_default)
        schema_id, body = unframe(data)
        writer = self._writer(schema_id)
        reader = self.schema
        try:
            value = fastavro.schemaless_reader(
                io.BytesIO(body), writer.parsed,
                None if reader is None or reader is writer else reader.parsed)
        except Exception as exc:
            raise DecodeError(f"cannot decode Avro body written with schema id {schema_id}"
                              f"{'' if reader is None else ' into ' + str(reader.fullname)}"
                              f": {exc}") from None
        if self.record_type is not None:
            return self.record_type.from_data(value)  # type: ignore[attr-defined]
        return value

    def loads_many(self, datas: Iterable[bytes]) -> list[Any]:
        return [self.loads(d) for d in datas]

    def _writer(self, schema_id: int) -> Schema:
        writer = self._writers.get(schema_id)
        if writer is None:
            try:
                writer = self.registry.schema_by_id(schema_id)
            except SchemaRegistryError as exc:
                raise DecodeError(f"Avro schema id {schema_id} is unknown to the schema "
                                  f"registry: {exc}") from None
            if self.schema is not None and writer == self.schema:
                writer = self.schema     # same object: skip schema resolution on read
            self._writers[schema_id] = writer
        return writer

    def __repr__(self) -> str:
        what = self.schema.fullname or self.schema.type if self.schema else "derived"
        return f"<AvroCodec schema={what} subject={self.subject}>"


# -- the process-wide default registry ---------------------------------------------

_default: SchemaStore | None = None


def use_registry(registry: SchemaStore | str, *, datadir: str = "stores") -> SchemaStore:
    """Make ``registry`` (a SchemaStore, an ``http://`` registry URL, or a broker URL
    whose ``_schemas`` topic holds the registry) the default of every AvroCodec made
    without one. Returns it."""
    global _default
    if isinstance(registry, str):
        from streamkit.avro.registry import open_registry
        registry = open_registry(registry, datadir=datadir)
    _default = registry
    return registry


def default_registry() -> SchemaStore:
    """The default registry: set by :func:`use_registry` (the App does it), else from
    ``STREAMKIT_SCHEMA_REGISTRY_URL`` (http:// or a broker URL), else the registry in the
    ``_schemas`` topic of ``log://`` in ``STREAMKIT_DATADIR`` (default ``stores``), the
    App's default broker."""
    global _default
    if _default is None:
        url = os.environ.get("STREAMKIT_SCHEMA_REGISTRY_URL", "log://")
        use_registry(url, datadir=os.environ.get("STREAMKIT_DATADIR", "stores"))
    assert _default is not None
    return _default
