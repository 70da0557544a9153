"""What the embedded log (log:// and memory://) does beyond the broker contract of
tests/transport, or differently from a Kafka cluster: its error text, round-robin
spreading, LogAppendTime, the topic configs it reports, acks=0 queued in the broker
(decision 103), the fsync of acks="all" in its files, and memory:// sharing."""
from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from streamkit.errors import UnknownTopic
from streamkit.transport import connect
from streamkit.types import LOG_APPEND_TIME, OutgoingRecord, TopicPartition


def test_unknown_partition_refused(broker):
    # Kafka's driver names the partition as t[5] (tests/transport/test_kafka_broker.py)
    broker.create_topic("t", partitions=2)
    with pytest.raises(UnknownTopic, match="no partition 5"):
        broker.produce("t", [OutgoingRecord(None, b"v", partition=5)])
    with pytest.raises(UnknownTopic, match="no partition 2"):
        broker.fetch(TopicPartition("t", 2), 0)


def test_unkeyed_records_spread_over_partitions(broker):
    # round robin per record; a Kafka producer sticks to a partition per batch
    broker.create_topic("t", partitions=4)
    metas = broker.produce("t", [OutgoingRecord(None, b"v")] * 100)
    counts = [sum(1 for m in metas if m.partition == p) for p in range(4)]
    assert counts == [25, 25, 25, 25]
    # and across calls, not always starting at the same partition
    singles = [broker.produce("t", [OutgoingRecord(None, b"v")])[0].partition
               for _ in range(8)]
    assert set(singles) == {0, 1, 2, 3}


def test_log_append_time_stamps_the_append(broker):
    # not in the contract: tansu, the test suite's Kafka-protocol broker, keeps the
    # producer's timestamp on a LogAppendTime topic
    broker.create_topic("t", partitions=1,
                        config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    meta = broker.produce("t", [OutgoingRecord(None, b"a", timestamp=1234567)])[0]
    after = int(time.time() * 1000)
    assert before <= meta.timestamp <= after
    got = broker.fetch(TopicPartition("t", 0), 0)[0]
    assert got.timestamp == meta.timestamp and got.timestamp_type == LOG_APPEND_TIME


def test_describe_reports_the_default_cleanup_policy(broker):
    # the log reports every config of a topic; Kafka's driver only those set on it
    broker.create_topic("a", partitions=2, config={"retention.ms": 1000})
    info = broker.describe_topic("a")
    assert info.config["cleanup.policy"] == "delete"


def test_acks_0_returns_before_the_write(url):
    writer = connect(url, default_partitions=1)
    reader = connect(url)
    writer.create_topic("t", partitions=1)
    metas = writer.produce("t", [OutgoingRecord(None, b"v")] * 3, acks=0)
    assert [m.offset for m in metas] == [-1, -1, -1]
    assert [m.partition for m in metas] == [0, 0, 0]
    assert reader.fetch(TopicPartition("t", 0), 0) == []      # not written yet
    # the next call of any kind on the writer writes them, before its own records
    meta = writer.produce("t", [OutgoingRecord(None, b"w")], acks=1)[0]
    assert meta.offset == 3
    assert [m.value for m in reader.fetch(TopicPartition("t", 0), 0)] == [b"v"] * 3 + [b"w"]
    writer.close()
    reader.close()


def test_acks_all_writes_and_records_the_fsync(log_url):
    broker = connect(log_url, default_partitions=2)
    metas = broker.produce("t", [OutgoingRecord(b"k%d" % i, b"v") for i in range(50)],
                           acks="all")
    assert sorted(m.offset for m in metas if m.partition == 0) == \
        list(range(sum(1 for m in metas if m.partition == 0)))
    root = Path(log_url[len("log://"):])
    for p in range(2):
        base, pos = struct.unpack("<qq", (root / "t" / str(p) / "synced").read_bytes())
        assert base == 0 and pos == (root / "t" / str(p) / f"{0:020d}.log").stat().st_size


def test_memory_url_shares_data_within_process():
    a = connect("memory://shared-test", default_partitions=2)
    b = connect("memory://shared-test")
    a.produce("t", [OutgoingRecord(None, b"hello", partition=1)])
    assert [m.value for m in b.fetch(TopicPartition("t", 1), 0)] == [b"hello"]
    other = connect("memory://other-test")
    assert "t" not in other.list_topics()


def test_reset_memory_forgets_a_memory_log():
    from streamkit.log.broker import reset_memory
    connect("memory://to-reset").produce("t", [OutgoingRecord(None, b"v")])
    assert connect("memory://to-reset").list_topics() == ["t"]
    reset_memory("to-reset")
    assert connect("memory://to-reset").list_topics() == []
