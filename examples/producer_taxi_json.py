"""Send the taxi rides of a CSV file to ``yellow_taxi_ride.json`` as JSON, keyed by vendor.

    python examples/producer_taxi_json.py                  # as fast as it can
    python examples/producer_taxi_json.py --rate 10        # 10 rides a second
    python examples/producer_taxi_json.py --broker kafka://localhost:9092

Ctrl-C stops it: the rides sent so far are written, it prints how many and exits 130.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import streamkit
from streamkit.cli.sample import ride_json

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", default=str(HERE / "data" / "rides.csv"))
    parser.add_argument("--topic", default="yellow_taxi_ride.json")
    parser.add_argument("--rate", type=float, default=None, help="rides per second")
    parser.add_argument("--broker", default=os.environ.get("STREAMKIT_BROKER", "log://"))
    parser.add_argument("--datadir", default=os.environ.get("STREAMKIT_DATADIR", "stores"))
    parser.add_argument("--partitions", type=int, default=4,
                        help="partitions of the topic if it does not exist yet")
    args = parser.parse_args()

    producer = streamkit.Producer(
        broker=args.broker, datadir=args.datadir, default_partitions=args.partitions,
        value_serializer=lambda ride: json.dumps(ride).encode(),
        key_serializer=lambda vendor: str(vendor).encode())
    sent = 0
    try:
        with open(args.csv, newline="") as f, producer:
            for row in csv.DictReader(f):
                ride = ride_json(row)
                producer.send(args.topic, value=ride, key=ride["vendorId"])
                sent += 1
                if args.rate:
                    time.sleep(1 / args.rate)
    except KeyboardInterrupt:
        # Ctrl-C: leaving the with block wrote the rides already sent
        print(f"interrupted: sent {sent} rides to {args.topic} on {args.broker}")
        raise SystemExit(130) from None
    print(f"sent {sent} rides to {args.topic} on {args.broker}")


if __name__ == "__main__":
    main()
