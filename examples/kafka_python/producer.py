"""The course's kafka-python producer, as its own script here: every row of a rides CSV
sent as JSON to ``rides_json`` on the broker at ``localhost:9092``.

    streamkit broker &                                 # instead of docker-compose
    python examples/kafka_python/producer.py [CSV]     # default: examples/data/rides.csv

A plain Kafka client: it runs the same against ``streamkit broker`` and against Kafka.
``BOOTSTRAP_SERVERS`` points it elsewhere (``host:port``), for the tests' free port.
"""
import csv
import json
import os
import sys
from pathlib import Path

from kafka import KafkaProducer

CSV_PATH = sys.argv[1] if len(sys.argv) > 1 else \
    str(Path(__file__).resolve().parents[1] / "data" / "rides.csv")
BOOTSTRAP_SERVERS = os.environ.get("BOOTSTRAP_SERVERS", "localhost:9092")
TOPIC = "rides_json"


def main() -> None:
    producer = KafkaProducer(bootstrap_servers=[BOOTSTRAP_SERVERS],
                             value_serializer=lambda v: json.dumps(v).encode("utf-8"))
    sent = 0
    with open(CSV_PATH, newline="") as f:
        for row in csv.DictReader(f):
            producer.send(TOPIC, value=row)
            sent += 1
    producer.flush()
    producer.close()
    print(f"sent {sent} rides to {TOPIC}")


if __name__ == "__main__":
    main()
