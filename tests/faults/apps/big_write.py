"""Appends one write of many megabytes to a topic of the log (fault tests SIGKILL it
while the write is under way, to leave a torn tail).

    python big_write.py ROOT TOPIC RECORDS SIZE

prints ``ready`` once connected, then appends RECORDS values of SIZE bytes in one
``produce`` (one write(2) of several batches), then ``done``.
"""
from __future__ import annotations

import sys

from streamkit.transport import connect
from streamkit.types import OutgoingRecord


def main(root: str, topic: str, records: int, size: int) -> None:
    broker = connect(f"log://{root}")
    value = b"w" * size
    batch = [OutgoingRecord(None, value, None, None, 0) for _ in range(records)]
    print("ready", flush=True)
    broker.produce(topic, batch, acks=1)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
