"""Send taxi rides as Avro, with a key schema and a value schema, like the course's
``AvroProducer``: both schemas are registered in the Schema Registry under
``<topic>-key`` and ``<topic>-value`` and every record carries its schema id.

    python examples/avro_producer.py                       # registry in the log's _schemas
    python examples/avro_producer.py --registry http://127.0.0.1:8081   # a REST registry
    python examples/avro_consumer.py                       # read them back
"""
from __future__ import annotations

import argparse
import os

import streamkit
from streamkit.avro import AvroCodec, Schema, use_registry

TOPIC = "yellow_taxi_rides.avro"

KEY_SCHEMA = Schema.parse({
    "type": "record", "name": "RideKey", "namespace": "streamkit.examples.taxi",
    "fields": [{"name": "vendor_id", "type": "int"}]})

# Amounts are Avro "float" (32 bits, 4 bytes each): 9.3 is read back as 9.300000190734863.
VALUE_SCHEMA = Schema.parse({
    "type": "record", "name": "RideValue", "namespace": "streamkit.examples.taxi",
    "fields": [{"name": "vendor_id", "type": "int"},
               {"name": "passenger_count", "type": "int"},
               {"name": "trip_distance", "type": "float"},
               {"name": "payment_type", "type": "int"},
               {"name": "total_amount", "type": "float"}]})


def sample_rides(count: int) -> list[dict]:
    """A few deterministic rides: vendors 1 and 2, growing distances and amounts."""
    rides = []
    for i in range(count):
        distance = round(0.7 + 1.3 * (i % 9), 1)
        rides.append({"vendor_id": 1 + i % 2, "passenger_count": 1 + i % 4,
                      "trip_distance": distance, "payment_type": 1 + i % 3,
                      "total_amount": round(3.5 + 2.5 * distance + (i % 5), 2)})
    return rides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topic", default=TOPIC)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--broker", default=os.environ.get("STREAMKIT_BROKER", "log://"))
    parser.add_argument("--datadir", default=os.environ.get("STREAMKIT_DATADIR", "stores"))
    parser.add_argument("--registry", default=os.environ.get("STREAMKIT_SCHEMA_REGISTRY_URL"),
                        help="registry URL (http://host:port); default: the broker's "
                             "_schemas topic")
    args = parser.parse_args()

    registry = use_registry(args.registry or args.broker, datadir=args.datadir)
    key_codec = AvroCodec(KEY_SCHEMA, registry=registry).bind(args.topic, is_key=True)
    value_codec = AvroCodec(VALUE_SCHEMA, registry=registry).bind(args.topic)
    producer = streamkit.Producer(broker=args.broker, datadir=args.datadir,
                                  key_serializer=key_codec.dumps,
                                  value_serializer=value_codec.dumps)
    with producer:
        for ride in sample_rides(args.count):
            producer.send(args.topic, key={"vendor_id": ride["vendor_id"]}, value=ride)
    key_id = registry.register_id(f"{args.topic}-key", KEY_SCHEMA)
    value_id = registry.register_id(f"{args.topic}-value", VALUE_SCHEMA)
    print(f"sent {args.count} rides to {args.topic} on {args.broker} "
          f"(key schema id {key_id}, value schema id {value_id})")


if __name__ == "__main__":
    main()
