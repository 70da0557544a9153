"""Avro records in Confluent's wire format and a Schema Registry kept in the broker.

Importing this package registers the ``avro`` codec, so ``serializer="avro"`` works on a
Record. Needs fastavro (extra ``streamkit[avro]``). The registry's REST server is in the
web layer, ``streamkit.web.registry`` (extra ``web``), and its commands in
``streamkit.cli.registry_commands``: nothing here imports either.
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
           "open_registry", "schema_for", "unframe", "use_registry"]


def _register_codec() -> None:
    try:
        from streamkit.serializers import codecs
    except ImportError:  # pragma: no cover - the serializers layer not installed
        return
    codecs.register("avro", AvroCodec())


_register_codec()
