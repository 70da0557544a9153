"""Produce, fetch, offsets and topics on log:// and memory://."""
from __future__ import annotations

from streamkit.log.partitioner import partition_for_key
from streamkit.transport import connect
from streamkit.types import CREATE_TIME, OutgoingRecord, TopicPartition


def test_offsets_are_dense_from_zero(broker):
    broker.create_topic("t", partitions=1)
    metas = broker.produce("t", [OutgoingRecord(None, b"v%d" % i) for i in range(1200)])
    assert [m.offset for m in metas] == list(range(1200))
    more = broker.produce("t", [OutgoingRecord(None, b"x")])
    assert more[0].offset == 1200
    messages = broker.fetch(TopicPartition("t", 0), 0, max_records=5000)
    assert [m.offset for m in messages] == list(range(1201))
    assert messages[7].value == b"v7"
    assert messages[7].timestamp_type == CREATE_TIME
    assert broker.offsets(TopicPartition("t", 0)) == (0, 1201)


def test_fetch_from_middle_and_max_records(broker):
    broker.create_topic("t", partitions=1)
    broker.produce("t", [OutgoingRecord(b"k", b"%d" % i) for i in range(100)])
    got = broker.fetch(TopicPartition("t", 0), 37, max_records=10)
    assert [m.offset for m in got] == list(range(37, 47))
    assert broker.fetch(TopicPartition("t", 0), 100) == []


def test_keyed_records_follow_kafka_partitioner(broker):
    broker.create_topic("t", partitions=4)
    keys = [b"21", b"foobar", b"abc", b"vendor-1", b"vendor-2"]
    metas = broker.produce("t", [OutgoingRecord(k, b"v") for k in keys])
    assert [m.partition for m in metas] == [partition_for_key(k, 4) for k in keys]


def test_memory_url_shares_data_within_process():
    a = connect("memory://shared-test", default_partitions=2)
    b = connect("memory://shared-test")
    a.produce("t", [OutgoingRecord(None, b"hello", partition=1)])
    assert [m.value for m in b.fetch(TopicPartition("t", 1), 0)] == [b"hello"]
    other = connect("memory://other-test")
    assert "t" not in other.list_topics()
