"""Read the rides with a plain consumer in a group, printing partition and offset:
``python examples/consumer.py [--group G] [--timeout SECONDS]``."""
from __future__ import annotations

import argparse
import json
import os

import streamkit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topic", default="yellow_taxi_ride.json")
    parser.add_argument("--group", default="taxi-consumer")
    parser.add_argument("--broker", default=os.environ.get("STREAMKIT_BROKER", "log://"))
    parser.add_argument("--datadir", default=os.environ.get("STREAMKIT_DATADIR", "stores"))
    parser.add_argument("--timeout", type=float, default=None,
                        help="stop after this many seconds without a message")
    args = parser.parse_args()

    consumer = streamkit.Consumer(
        args.topic, broker=args.broker, datadir=args.datadir, group_id=args.group,
        auto_offset_reset="earliest", enable_auto_commit=True,
        value_deserializer=json.loads,
        consumer_timeout_ms=None if args.timeout is None else args.timeout * 1000)
    read = 0
    try:
        for message in consumer:
            ride = message.value
            print(f"partition={message.partition} offset={message.offset} "
                  f"vendor={ride['vendorId']} total_amount={ride['total_amount']}", flush=True)
            read += 1
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()           # commits what was read
    print(f"read {read} rides as group {args.group}")


if __name__ == "__main__":
    main()
