"""A transactional producer for the fault tests to SIGKILL: runs transactions on a
topic of the log until it is killed, committing or aborting each at random, and
prints each outcome once the call returned.

    python txn_producer.py ROOT TOPIC TRANSACTIONAL_ID LIFE SEED

prints ``ready`` once its ``init_transactions`` returned (which aborts or finishes what
an earlier life of the id left), then ``commit <n>`` or ``abort <n>`` per transaction
``n``. Transaction ``n`` holds records of random partitions whose values are
``<id>/<life>/<n>/<i>/<count>``.
"""
from __future__ import annotations

import random
import sys

from streamkit.log.broker import open_log_broker
from streamkit.types import OutgoingRecord


def main(root: str, topic: str, transactional_id: str, life: int, seed: int) -> None:
    rng = random.Random(seed)
    broker = open_log_broker(f"log://{root}")
    partitions = broker.partition_count(topic) or 1
    tx = broker.transactional_producer(transactional_id)
    print("ready", flush=True)
    n = 0
    while True:
        count = rng.choice((1, rng.randint(1, 20), rng.randint(50, 600)))
        tx.begin()
        sent = 0
        while sent < count:
            part = min(count - sent, rng.randint(1, 200))
            tx.send(topic, [OutgoingRecord(
                None, f"{transactional_id}/{life}/{n}/{sent + i}/{count}".encode(),
                None, None, rng.randrange(partitions)) for i in range(part)])
            sent += part
        if rng.random() < 0.7:
            tx.commit()
            print(f"commit {n}", flush=True)
        else:
            tx.abort()
            print(f"abort {n}", flush=True)
        n += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
