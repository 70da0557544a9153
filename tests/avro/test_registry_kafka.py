"""The registry and the codec on kafka:// (tansu and streamkit broker): the same
_schemas topic replayed by two registries, compatibility refused, records decoded."""
from __future__ import annotations

import pytest

from streamkit.avro import AvroCodec, Schema, SchemaRegistry
from streamkit.errors import IncompatibleSchema
from streamkit.transport import connect

pytestmark = pytest.mark.kafka


@pytest.fixture
def kafka_url(start_tansu):
    # a broker of its own: the registries here replay the _schemas topic from the start
    tansu = start_tansu()
    yield tansu.url
    tansu.stop()


def test_registry_on_kafka(kafka_url) -> None:
    v1 = Schema.parse({"type": "record", "name": "Ride",
                       "fields": [{"name": "vendor_id", "type": "int"}]})
    v2 = Schema.parse({"type": "record", "name": "Ride",
                       "fields": [{"name": "vendor_id", "type": "long"},
                                  {"name": "tip", "type": "double", "default": 0.0}]})
    breaking = Schema.parse({"type": "record", "name": "Ride",
                             "fields": [{"name": "vendor_id", "type": "string"}]})
    a = SchemaRegistry(connect(kafka_url), owns_broker=True)
    b = SchemaRegistry(connect(kafka_url), owns_broker=True)
    try:
        assert a.register("rides-value", v1).id == 1
        data = AvroCodec(v1, registry=a).bind("rides").dumps({"vendor_id": 7})
        assert b.register("rides-value", v2).version == 2
        with pytest.raises(IncompatibleSchema, match="Ride.vendor_id"):
            a.register("rides-value", breaking)
        assert a.versions("rides-value") == [1, 2]
        assert AvroCodec(v2, registry=b).loads(data) == {"vendor_id": 7, "tip": 0.0}
        info = a.broker.describe_topic("_schemas")
        assert info.partitions == 1 and info.config.get("cleanup.policy") == "compact"
    finally:
        a.close()
        b.close()
