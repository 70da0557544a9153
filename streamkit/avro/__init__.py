"""Avro records in Confluent's wire format and a Schema Registry kept in the broker.

Importing this package registers the ``avro`` codec, so ``serializer="avro"`` works on a
Record. Needs fastavro (extra ``streamkit[avro]``); the REST server needs the ``web`` extra.
"""
from __future__ import annotations

from streamkit.avro.client import RegistryClient
from streamkit.avro.codec import AvroCodec, default_registry, frame, unframe, use_registry
from streamkit.avro.compatibility import LEVELS, can_read, check_level
from streamkit.avro.registry import (SCHEMAS_TOPIC, RegisteredSchema, SchemaRegistry,
                                     open_registry)
from streamkit.avro.schema import Schema, schema_for

__all__ = ["AvroCodec", "LEVELS", "RegisteredSchema", "RegistryClient", "SCHEMAS_TOPIC",
           "Schema",
           "SchemaRegistry", "can_read", "check_level", "default_registry", "frame",
           "open_registry", "schema_for", "serve_registry", "unframe", "use_registry"]


def __getattr__(name: str):
    # the server needs starlette/uvicorn (extra "web"): import it only when asked for
    if name == "serve_registry":
        from streamkit.avro.server import serve_registry
        return serve_registry
    raise AttributeError(f"module 'streamkit.avro' has no attribute {name!r}")


def _register_codec() -> None:
    try:
        from streamkit.serializers import codecs
    except ImportError:  # pragma: no cover - the serializers layer not installed
        return
    codecs.register("avro", AvroCodec())


_register_codec()
