"""The avro codec: Confluent framing, taxi-ride round trips, Avro schema resolution."""
from __future__ import annotations

import struct
from datetime import datetime, timezone
from decimal import Decimal

import pytest

import streamkit.avro  # noqa: F401 - registers the "avro" codec
from streamkit.avro import AvroCodec, Schema, schema_for
from streamkit.errors import DecodeError
from streamkit.models import Record
from streamkit.serializers import Serde, codecs

# The course's taxi ride value schema has Avro float (32-bit) amounts: written here
# from scratch, with the same shape.
RIDE_VALUE = Schema.parse({
    "type": "record", "name": "RideValue", "namespace": "test.taxi",
    "fields": [{"name": "vendor_id", "type": "int"},
               {"name": "passenger_count", "type": "int"},
               {"name": "trip_distance", "type": "float"},
               {"name": "payment_type", "type": "int"},
               {"name": "total_amount", "type": "float"}]})


class TaxiRide(Record, serializer="avro"):
    vendorId: int
    passenger_count: int
    trip_distance: float
    payment_type: int
    total_amount: float
    pickup: datetime | None = None
    tip: Decimal = Decimal("0")


def test_framing_is_magic_byte_then_big_endian_schema_id(registry) -> None:
    c = AvroCodec(RIDE_VALUE, registry=registry, subject="rides-value")
    ride = {"vendor_id": 2, "passenger_count": 1, "trip_distance": 9.3,
            "payment_type": 1, "total_amount": 20.5}
    data = c.dumps(ride)
    assert data[0] == 0
    (schema_id,) = struct.unpack(">I", data[1:5])
    assert schema_id == registry.get_version("rides-value").id == 1
    # body: zigzag varints 4, 2, float32 9.3 LE, 2, float32 20.5
    assert data[5:7] == b"\x04\x02" and len(data) == 5 + 2 + 4 + 1 + 4


def test_avro_float_is_32_bit(registry) -> None:
    c = AvroCodec(RIDE_VALUE, registry=registry, subject="rides-value")
    back = c.loads(c.dumps({"vendor_id": 2, "passenger_count": 1, "trip_distance": 9.3,
                            "payment_type": 1, "total_amount": 20.5}))
    assert back["trip_distance"] == 9.300000190734863 != 9.3
    assert back["total_amount"] == 20.5       # exactly representable in 32 bits
    assert back["vendor_id"] == 2


def test_taxi_ride_record_round_trip_with_derived_schema(default_registry) -> None:
    ride = TaxiRide(vendorId=1, passenger_count=2, trip_distance=9.3, payment_type=1,
                    total_amount=40.25,
                    pickup=datetime(2020, 1, 1, 0, 5, 7, 123456, tzinfo=timezone.utc),
                    tip=Decimal("2.55"))
    data = ride.dumps()
    assert data[0] == 0
    back = TaxiRide.loads(data)
    assert back == ride
    assert back.trip_distance == 9.3      # derived schema: float -> double, exact
    # registered under the record's name (no topic known): RecordNameStrategy
    assert default_registry.subjects() == ["TaxiRide"]
    schema = default_registry.get_version("TaxiRide").schema
    assert schema == schema_for(TaxiRide)
    assert [f["type"] for f in schema.definition["fields"][:5]] == \
        ["long", "long", "double", "long", "double"]


def test_serde_of_a_topic_with_avro_records(default_registry) -> None:
    serde = Serde(TaxiRide)
    assert serde.serializer == "avro" and codecs.get("avro") is serde.codec
    rides = [TaxiRide(vendorId=v, passenger_count=1, trip_distance=1.5, payment_type=2,
                      total_amount=10.0 + v) for v in range(5)]
    datas = [serde.dumps(r) for r in rides]
    assert serde.loads_many(datas) == rides
    with pytest.raises(DecodeError):
        serde.loads(b'{"vendorId": 1}')        # JSON on an avro topic: no magic byte


def test_bound_codec_registers_topic_subjects(registry) -> None:
    value_codec = AvroCodec(RIDE_VALUE, registry=registry).bind("rides")
    key_schema = Schema.parse({"type": "record", "name": "RideKey",
                               "fields": [{"name": "vendor_id", "type": "int"}]})
    key_codec = AvroCodec(key_schema, registry=registry).bind("rides", is_key=True)
    key_codec.dumps({"vendor_id": 1})
    value_codec.dumps({"vendor_id": 1, "passenger_count": 1, "trip_distance": 1.0,
                       "payment_type": 1, "total_amount": 1.0})
    assert registry.subjects() == ["rides-key", "rides-value"]


def test_reader_resolves_writer_schema_by_avro_rules(registry) -> None:
    v1 = Schema.parse({"type": "record", "name": "Ride", "fields": [
        {"name": "vendor_id", "type": "int"},
        {"name": "note", "type": "string"},
        {"name": "trip_distance", "type": "float"},
        {"name": "dropped", "type": "string"}]})
    v2 = Schema.parse({"type": "record", "name": "Ride", "fields": [
        {"name": "vendor_id", "type": "long"},          # int -> long
        {"name": "note", "type": "bytes"},              # string -> bytes
        {"name": "trip_distance", "type": "double"},    # float -> double
        {"name": "pu_location_id", "type": ["null", "long"], "default": None}]})  # added
    writer = AvroCodec(v1, registry=registry, subject="r-value")
    reader = AvroCodec(v2, registry=registry)
    data = writer.dumps({"vendor_id": 7, "note": "hi", "trip_distance": 9.3,
                         "dropped": "x"})
    assert reader.loads(data) == {"vendor_id": 7, "note": b"hi",
                                  "trip_distance": pytest.approx(9.3, rel=1e-7),
                                  "pu_location_id": None}
    # without a reader schema the writer's is used
    assert AvroCodec(registry=registry).loads(data)["dropped"] == "x"


def test_reader_that_cannot_resolve_raises_decode_error(registry) -> None:
    v1 = Schema.parse({"type": "record", "name": "Ride",
                       "fields": [{"name": "vendor_id", "type": "string"}]})
    v2 = Schema.parse({"type": "record", "name": "Ride",
                       "fields": [{"name": "vendor_id", "type": "int"}]})
    data = AvroCodec(v1, registry=registry, subject="s").dumps({"vendor_id": "a"})
    with pytest.raises(DecodeError, match="schema id 1"):
        AvroCodec(v2, registry=registry).loads(data)


def test_bad_frames_are_decode_errors(registry) -> None:
    c = AvroCodec(registry=registry)
    with pytest.raises(DecodeError, match="first byte is 0x7b"):
        c.loads(b'{"a": 1}')
    with pytest.raises(DecodeError, match="at least 5"):
        c.loads(b"\x00\x00")
    with pytest.raises(DecodeError, match="schema id 99 is unknown"):
        c.loads(b"\x00\x00\x00\x00\x63\x02")


def test_record_into_record_type(registry) -> None:
    c = AvroCodec(record_type=TaxiRide, registry=registry, subject="rides-value")
    ride = TaxiRide(vendorId=1, passenger_count=2, trip_distance=3.5, payment_type=1,
                    total_amount=12.0)
    assert c.loads(c.dumps(ride)) == ride


def test_schema_derivation_of_optional_nested_and_defaults() -> None:
    class Zone(Record):
        zone_id: int
        borough: str = "Manhattan"

    class Trip(Record, namespace="test.trips"):
        zone: Zone
        stops: list[Zone] = []
        fare: float | None = None
        tags: dict[str, int] = {}
        vendor: int = 1
        surcharge: float | None = 0.5

    d = schema_for(Trip).definition
    assert d["name"] == "Trip" and d["namespace"] == "test.trips"
    fields = {f["name"]: f for f in d["fields"]}
    assert fields["zone"]["type"]["name"] == "Zone"
    assert fields["stops"]["type"] == {"type": "array", "items": "Zone"}
    assert fields["fare"] == {"name": "fare", "type": ["null", "double"], "default": None}
    assert fields["surcharge"] == {"name": "surcharge", "type": ["double", "null"],
                                   "default": 0.5}
    assert fields["tags"]["type"] == {"type": "map", "values": "long"}
    assert fields["vendor"]["default"] == 1


def test_record_with_an_explicit_avsc_schema(default_registry, tmp_path) -> None:
    path = tmp_path / "ride_value.avsc"
    path.write_text(RIDE_VALUE.to_json(indent=2))

    class SmallRide(Record, serializer="avro"):
        __avro_schema__ = str(path)
        vendor_id: int
        passenger_count: int
        trip_distance: float
        payment_type: int
        total_amount: float

    ride = SmallRide(vendor_id=1, passenger_count=1, trip_distance=9.3, payment_type=2,
                     total_amount=7.5)
    data = ride.dumps()
    assert len(data) == 5 + 2 + 4 + 1 + 4          # int varints and 32-bit floats
    back = SmallRide.loads(data)
    assert back.trip_distance == 9.300000190734863 and back.total_amount == 7.5
    assert default_registry.get_version("test.taxi.RideValue").schema == RIDE_VALUE


def test_a_value_that_does_not_fit_the_schema_names_the_field(registry) -> None:
    from streamkit.errors import ValidationError
    c = AvroCodec(RIDE_VALUE, registry=registry, subject="rides-value")
    with pytest.raises(ValidationError, match="RideValue.*passenger_count"):
        c.dumps({"vendor_id": 1, "passenger_count": "two", "trip_distance": 1.0,
                 "payment_type": 1, "total_amount": 1.0})
    with pytest.raises(ValidationError, match="no value and no default for total_amount"):
        c.dumps({"vendor_id": 1, "passenger_count": 2, "trip_distance": 1.0,
                 "payment_type": 1})
