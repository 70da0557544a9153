"""The course's kafka-python consumer, as its own script here: prints each ride of
``rides_json`` from the earliest offset, until Ctrl-C.

    python examples/kafka_python/consumer.py            # without a consumer group
    python examples/kafka_python/consumer.py GROUP      # in group GROUP, as the course

Without a group (``group_id=None``) kafka-python reads every partition of the topic
itself and commits nothing. ``BOOTSTRAP_SERVERS`` points it elsewhere (``host:port``).
"""
import json
import os
import sys

from kafka import KafkaConsumer

BOOTSTRAP_SERVERS = os.environ.get("BOOTSTRAP_SERVERS", "localhost:9092")
GROUP_ID = sys.argv[1] if len(sys.argv) > 1 else None
TOPIC = "rides_json"


def main() -> None:
    consumer = KafkaConsumer(
        TOPIC,
        bootstrap_servers=[BOOTSTRAP_SERVERS],
        auto_offset_reset="earliest",
        enable_auto_commit=GROUP_ID is not None,
        group_id=GROUP_ID,
        value_deserializer=lambda x: json.loads(x.decode("utf-8")))
    try:
        for message in consumer:
            ride = message.value
            print(f"partition={message.partition} offset={message.offset} "
                  f"vendor={ride['VendorID']} total_amount={ride['total_amount']}",
                  flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
