"""A producer for the fault tests to SIGKILL: appends batches of records to a topic of
the log until it is killed, and prints each batch once ``produce`` acknowledged it.

    python producer.py ROOT TOPIC ACKS SEED TAG

prints ``ready`` once connected, then one line per acknowledged batch:
``ack <partition> <first offset> <count> <seq of its first record> <value size>``;
record ``seq`` has the value ``record_value(TAG, seq, size)``. Batches go to random
partitions, of random sizes: up to a few thousand small records (several batches in
one write), or up to a hundred values of 4-32 KiB (a write of megabytes, which a
SIGKILL can cut short).
"""
from __future__ import annotations

import random
import sys

from streamkit.transport import connect
from streamkit.types import OutgoingRecord
from tests.faults.trials import record_value


def main(root: str, topic: str, acks: str, seed: int, tag: str) -> None:
    rng = random.Random(seed)
    broker = connect(f"log://{root}")
    partitions = broker.partition_count(topic) or 1
    ack: int | str = "all" if acks == "all" else int(acks)
    print("ready", flush=True)
    seq = 0
    while True:
        count = rng.choice((1, rng.randint(1, 50), rng.randint(1, 400),
                            rng.randint(500, 3000), -rng.randint(10, 100),
                            -rng.randint(10, 100)))
        size = rng.randint(0, 200) if count > 0 else rng.randint(4096, 32768)
        count = abs(count)
        partition = rng.randrange(partitions)
        records = [OutgoingRecord(None, record_value(tag, seq + i, size), None, None,
                                  partition) for i in range(count)]
        first = broker.produce(topic, records, acks=ack)[0].offset
        # one write per line, after produce returned: a printed batch was acknowledged
        print(f"ack {partition} {first} {count} {seq} {size}", flush=True)
        seq += count


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
