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
from streamkit.errors import DecodeError, SchemaRegistryError, ValidationError

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
        self._plans: dict[type, tuple[Any, Any, bytes]] = {}
        self._reads: dict[int, tuple[Any, Any]] = {}
        self._writers: dict[int, Schema] = {}
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
            self._plans.clear()
            self._reads.clear()
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
        kind = type(obj)
        plan = self._plans.get(kind)
        if plan is None:
            plan = self._plans[kind] = self._plan(kind)
        parsed, build, header = plan
        buf = io.BytesIO()
        buf.write(header)
        try:
            fastavro.schemaless_writer(buf, parsed, obj if build is None else build(obj))
        except Exception as exc:  # noqa: BLE001 - fastavro raises unrelated types
            raise ValidationError(
                f"cannot encode {kind.__name__} with Avro schema "
                f"{self._plan_schema(kind).fullname or 'of ' + kind.__name__}: {exc}") from None
        return buf.getvalue()

    def dumps_many(self, objs: Iterable[Any]) -> list[bytes]:
        return [self.dumps(o) for o in objs]

    def _plan_schema(self, kind: type) -> Schema:
        if self.schema is not None:
            return self.schema
        if not _is_record(kind):
            raise SchemaRegistryError(
                f"the avro codec got a {kind.__name__} and has no schema for it: write "
                "a streamkit Record, or use AvroCodec(schema=...) for plain values")
        return schema_for(kind)

    def _plan(self, kind: type) -> tuple[Any, Any, bytes]:
        """(parsed schema, datum builder or None, 5-byte header) for values of ``kind``:
        worked out once per type, so encoding is one dict lookup and a fastavro call."""
        schema = self._plan_schema(kind)
        if not _is_record(kind):
            build = None
        elif self.schema is None or schema_for(kind) == self.schema:
            build = record_datum_builder(kind)
        else:
            build = _generic_datum     # a Record written with another schema: by name
        return schema.parsed, build, _HEADER.pack(MAGIC_BYTE, self._schema_id(schema))

    def _schema_id(self, schema: Schema) -> int:
        subject = self.subject or schema.fullname
        if subject is None:
            raise SchemaRegistryError(
                f"no subject to register the {schema.type} schema under: bind the codec "
                "to a topic (codec.bind(topic)) or pass subject=")
        schema_id = self.registry.register_id(subject, schema)
        self._writers.setdefault(schema_id, schema)
        return schema_id

    # -- decode ---------------------------------------------------------------------
    def loads(self, data: bytes) -> Any:
        """One framed Avro value as a dict (or ``record_type`` instance)."""
        if self._registry is None and _default is not self._seen_default:
            self._follow(_default)
        if len(data) < 5 or data[0] != MAGIC_BYTE:
            unframe(data)              # raises the DecodeError that says why
        schema_id = int.from_bytes(data[1:5], "big")
        plan = self._reads.get(schema_id)
        if plan is None:
            plan = self._reads[schema_id] = self._read_plan(schema_id)
        buf = io.BytesIO(data)
        buf.seek(5)
        try:
            value = fastavro.schemaless_reader(buf, plan[0], plan[1])
        except Exception as exc:  # noqa: BLE001 - fastavro raises unrelated types
            reader = self.schema
            raise DecodeError(f"cannot decode Avro body written with schema id {schema_id}"
                              f"{'' if reader is None else ' into ' + str(reader.fullname)}"
                              f": {exc}") from None
        if self.record_type is not None:
            return self.record_type.from_data(value)  # type: ignore[attr-defined]
        return value

    def loads_many(self, datas: Iterable[bytes]) -> list[Any]:
        return [self.loads(d) for d in datas]

    def _read_plan(self, schema_id: int) -> tuple[Any, Any]:
        """(writer's parsed schema, reader's parsed schema or None when they are equal)."""
        writer = self._writers.get(schema_id)
        if writer is None:
            try:
                writer = self.registry.schema_by_id(schema_id)
            except SchemaRegistryError as exc:
                raise DecodeError(f"Avro schema id {schema_id} is unknown to the schema "
                                  f"registry: {exc}") from None
            self._writers[schema_id] = writer
        reader = self.schema
        return writer.parsed, None if reader is None or reader == writer else reader.parsed

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
        store: SchemaStore = open_registry(registry, datadir=datadir)
    else:
        store = registry
    _default = store
    return store


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
