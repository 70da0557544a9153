"""streamkit's own kafka:// transport reading from ``streamkit broker`` after retention
removed the start of a partition: Kafka answers a fetch below the log start with
OFFSET_OUT_OF_RANGE, and kafka:// then reads from the first offset still there, as
log:// does. (Only here can a test make retention run: tansu keeps everything.)"""
from __future__ import annotations

import time

import pytest

pytest.importorskip("confluent_kafka")

from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition
from tests.wire.conftest import Wire

HOUR = 3600 * 1000


def test_fetch_below_the_log_start_reads_from_the_first_record_kept(wire: Wire) -> None:
    wire.log.create_topic("t", partitions=1, config={"retention.ms": HOUR})
    old = int(time.time() * 1000) - 2 * HOUR
    wire.log.produce("t", [OutgoingRecord(None, b"old%d" % i, timestamp=old)
                           for i in range(20)])
    wire.log.cleanup("t")          # rolls the segment: all of it is past retention
    wire.log.produce("t", [OutgoingRecord(None, b"new%d" % i) for i in range(5)])
    assert wire.log.describe_topic("t").start_offsets == [20]

    kafka = connect(f"kafka://{wire.bootstrap}")
    try:
        got = kafka.fetch(TopicPartition("t", 0), 0, 100, timeout=5)
    finally:
        kafka.close()
    assert [(m.offset, m.value) for m in got] == [(20 + i, b"new%d" % i) for i in range(5)]
