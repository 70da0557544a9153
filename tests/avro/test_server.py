"""The REST API of `streamkit registry serve`, driven by confluent-kafka's own
SchemaRegistryClient, AvroSerializer and AvroDeserializer against a real server process.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from confluent_kafka.schema_registry import Schema as CSchema
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError as CError
from confluent_kafka.serialization import MessageField, SerializationContext

from streamkit.avro import AvroCodec, Schema, SchemaRegistry
from streamkit.avro.client import RegistryClient
from streamkit.errors import IncompatibleSchema, SubjectNotFound
from streamkit.transport import connect

VALUE_V1 = json.dumps({
    "type": "record", "name": "RideValue", "namespace": "test.taxi",
    "fields": [{"name": "vendor_id", "type": "int"},
               {"name": "passenger_count", "type": "int"},
               {"name": "trip_distance", "type": "float"},
               {"name": "payment_type", "type": "int"},
               {"name": "total_amount", "type": "float"}]})
VALUE_V2 = json.dumps({**json.loads(VALUE_V1), "fields": json.loads(VALUE_V1)["fields"] + [
    {"name": "pu_location_id", "type": ["null", "long"], "default": None}]})
VALUE_BREAKING = json.dumps({**json.loads(VALUE_V1), "fields": [
    {"name": "vendor_id", "type": "string"}] + json.loads(VALUE_V1)["fields"][1:]})
KEY = json.dumps({"type": "record", "name": "RideKey", "namespace": "test.taxi",
                  "fields": [{"name": "vendor_id", "type": "int"}]})
RIDE = {"vendor_id": 2, "passenger_count": 1, "trip_distance": 9.3, "payment_type": 1,
        "total_amount": 20.5}


@pytest.fixture
def client(server) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": server["url"]})


def error_of(fn, *args, **kwargs) -> tuple[int, int]:
    with pytest.raises(CError) as err:
        fn(*args, **kwargs)
    return err.value.http_status_code, err.value.error_code


def test_register_lookup_and_read_with_confluents_client(client) -> None:
    sid = client.register_schema("reg-value", CSchema(VALUE_V1, "AVRO"))
    assert client.register_schema("reg-value", CSchema(VALUE_V1, "AVRO")) == sid
    fresh = SchemaRegistryClient({"url": client._rest_client.base_urls[0]})
    assert fresh.register_schema("reg-value", CSchema(VALUE_V1, "AVRO")) == sid
    assert json.loads(fresh.get_schema(sid).schema_str) == json.loads(VALUE_V1)
    sid2 = fresh.register_schema("reg-value", CSchema(VALUE_V2, "AVRO"))
    assert sid2 > sid
    assert fresh.get_versions("reg-value") == [1, 2]
    latest = fresh.get_latest_version("reg-value")
    assert (latest.version, latest.schema_id) == (2, sid2)
    assert fresh.get_version("reg-value", 1).schema_id == sid
    found = fresh.lookup_schema("reg-value", CSchema(VALUE_V1, "AVRO"))
    assert (found.version, found.schema_id) == (1, sid)
    assert "reg-value" in fresh.get_subjects()


def test_compatibility_config_and_checks(client) -> None:
    client.register_schema("cfg-value", CSchema(VALUE_V1, "AVRO"))
    assert client.get_compatibility() == "BACKWARD"
    assert client.test_compatibility("cfg-value", CSchema(VALUE_V2, "AVRO")) is True
    assert client.test_compatibility("cfg-value", CSchema(VALUE_BREAKING, "AVRO")) is False
    assert client.test_compatibility_all_versions(
        "cfg-value", CSchema(VALUE_BREAKING, "AVRO")) is False
    client.set_compatibility("cfg-value", "NONE")
    assert client.get_compatibility("cfg-value") == "NONE"
    assert client.test_compatibility("cfg-value", CSchema(VALUE_BREAKING, "AVRO")) is True


def test_error_codes(client, server) -> None:
    client.register_schema("err-value", CSchema(VALUE_V1, "AVRO"))
    assert error_of(client.get_versions, "no-such-subject") == (404, 40401)
    assert error_of(client.get_version, "err-value", 7) == (404, 40402)
    assert error_of(client.get_schema, 9999) == (404, 40403)
    assert error_of(client.lookup_schema, "err-value", CSchema(KEY, "AVRO")) == (404, 40403)
    assert error_of(client.register_schema, "err-value",
                    CSchema(VALUE_BREAKING, "AVRO")) == (409, 409)
    assert error_of(client.register_schema, "err-value",
                    CSchema('{"type": "record", "name": "X", "fields": [{"name": "a", '
                            '"type": "nosuchtype"}]}', "AVRO")) == (422, 42201)
    assert error_of(client.register_schema, "err-value",
                    CSchema('{"type": "object"}', "JSON")) == (422, 42201)
    assert error_of(client.set_compatibility, "err-value", "SIDEWAYS") == (422, 42203)
    # a version that is not a number: the client does not send one, so ask over HTTP
    req = urllib.request.Request(server["url"] + "/subjects/err-value/versions/abc")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code == 422
    assert err.value.headers["Content-Type"] == "application/vnd.schemaregistry.v1+json"
    assert json.loads(err.value.read())["error_code"] == 42202


def test_incompatible_error_says_which_field_breaks_which_rule(server) -> None:
    body = json.dumps({"schema": VALUE_V1}).encode()
    req = urllib.request.Request(server["url"] + "/subjects/why-value/versions", data=body,
                                 method="POST")
    urllib.request.urlopen(req).read()
    req = urllib.request.Request(server["url"] + "/subjects/why-value/versions",
                                 data=json.dumps({"schema": VALUE_BREAKING}).encode(),
                                 method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    reply = json.loads(err.value.read())
    assert err.value.code == 409 and reply["error_code"] == 409
    assert "RideValue.vendor_id" in reply["message"] and "TYPE_MISMATCH" in reply["message"]
    req = urllib.request.Request(
        server["url"] + "/compatibility/subjects/why-value/versions/latest?verbose=true",
        data=json.dumps({"schema": VALUE_BREAKING}).encode(), method="POST")
    reply = json.loads(urllib.request.urlopen(req).read())
    assert reply["is_compatible"] is False and "vendor_id" in reply["messages"][0]


def test_soft_then_permanent_delete(client) -> None:
    client.register_schema("del-value", CSchema(VALUE_V1, "AVRO"))
    sid = client.register_schema("del-value", CSchema(VALUE_V2, "AVRO"))
    assert client.delete_version("del-value", 2) == 2
    assert client.get_versions("del-value") == [1]
    assert client.get_schema(sid) is not None                  # still resolvable
    assert error_of(client.delete_subject, "del-value", permanent=True) == (404, 40405)
    assert client.delete_subject("del-value") == [1]
    assert "del-value" not in client.get_subjects()
    assert error_of(client.get_versions, "del-value") == (404, 40401)
    assert error_of(client.delete_subject, "del-value") == (404, 40404)
    assert client.delete_subject("del-value", permanent=True) == [1, 2]


def test_confluent_serializer_and_streamkit_codec_read_each_other(client, server) -> None:
    ctx = SerializationContext("xrides", MessageField.VALUE)
    serializer = AvroSerializer(client, VALUE_V1)
    data = serializer(RIDE, ctx)
    assert data[0] == 0
    # streamkit reads it through the REST API...
    via_http = AvroCodec(registry=RegistryClient(server["url"]))
    got = via_http.loads(data)
    assert got["vendor_id"] == 2 and got["trip_distance"] == 9.300000190734863
    # ...and straight from the _schemas topic the server keeps in the log
    with SchemaRegistry(connect(server["broker"]), owns_broker=True) as local:
        assert AvroCodec(registry=local).loads(data) == got
        # streamkit writes (under xrides-value, v2 adds a field): confluent reads
        mine = AvroCodec(VALUE_V2, registry=local).bind("xrides").dumps(
            {**RIDE, "pu_location_id": 132})
    deserializer = AvroDeserializer(client)
    back = deserializer(mine, ctx)
    assert back["pu_location_id"] == 132 and back["vendor_id"] == 2
    # confluent's reader with the old schema resolves the new record (field skipped)
    old_reader = AvroDeserializer(client, VALUE_V1)
    assert "pu_location_id" not in old_reader(mine, ctx)
    assert client.get_versions("xrides-value") == [1, 2]


def test_streamkit_http_client_errors_map_to_streamkit_exceptions(server) -> None:
    reg = RegistryClient(server["url"])
    reg.register("cli-value", VALUE_V1)
    with pytest.raises(IncompatibleSchema):
        reg.register("cli-value", VALUE_BREAKING)
    with pytest.raises(SubjectNotFound):
        reg.versions("cli-nope")
    assert reg.check("cli-value", VALUE_BREAKING)
    assert reg.check("cli-value", Schema.parse(VALUE_V2)) == []
