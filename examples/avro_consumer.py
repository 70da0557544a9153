"""Read the Avro taxi rides of ``avro_producer.py``, like the course's ``AvroConsumer``:
each record's schema id is looked up in the Schema Registry and the body decoded.

    python examples/avro_consumer.py [--group G] [--timeout SECONDS]
"""
from __future__ import annotations

import argparse
import os

import streamkit
from streamkit.avro import AvroCodec, use_registry

TOPIC = "yellow_taxi_rides.avro"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topic", default=TOPIC)
    parser.add_argument("--group", default="taxirides.avro.consumer.1")
    parser.add_argument("--broker", default=os.environ.get("STREAMKIT_BROKER", "log://"))
    parser.add_argument("--datadir", default=os.environ.get("STREAMKIT_DATADIR", "stores"))
    parser.add_argument("--registry", default=os.environ.get("STREAMKIT_SCHEMA_REGISTRY_URL"),
                        help="registry URL (http://host:port); default: the broker's "
                             "_schemas topic")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="stop after this many seconds without a message")
    args = parser.parse_args()

    # No schema given: each record is decoded with the schema its id names (the
    # writer's). Pass AvroCodec(reader_schema) to read every version into one shape.
    codec = AvroCodec(registry=use_registry(args.registry or args.broker,
                                            datadir=args.datadir))
    consumer = streamkit.Consumer(
        args.topic, broker=args.broker, datadir=args.datadir, group_id=args.group,
        auto_offset_reset="earliest", key_deserializer=codec.loads,
        value_deserializer=codec.loads, consumer_timeout_ms=args.timeout * 1000)
    read = 0
    try:
        for message in consumer:
            key, ride = message.key, message.value
            print(f"partition={message.partition} offset={message.offset} "
                  f"key={key} distance={ride['trip_distance']} "
                  f"total_amount={ride['total_amount']}", flush=True)
            read += 1
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    print(f"read {read} rides as group {args.group}")


if __name__ == "__main__":
    main()
