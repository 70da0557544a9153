"""The broker contract, part 1: topics, produce, fetch and the offsets of a partition,
as every ``Broker`` (streamkit/transport/base.py) must keep them. Each test runs on
``log://``, ``memory://`` and ``kafka://`` (tests/transport/conftest.py). What one broker
does differently is tested with that broker: tests/log/test_log_broker.py and
tests/transport/test_kafka_broker.py."""
from __future__ import annotations

import random
import time

import pytest

from streamkit import errors
from streamkit.errors import OffsetOutOfRange, TopicExists, UnknownTopic
from streamkit.partitioner import partition_for_key
from streamkit.transport import connect
from streamkit.types import (CREATE_TIME, Message, OutgoingRecord, PartitionRecords,
                             TopicPartition)

# -- topics ------------------------------------------------------------------------


def test_create_describe_list_delete_topic(broker, topic_name):
    broker.create_topic(topic_name, partitions=3, config={"cleanup.policy": "compact"})
    assert topic_name in broker.list_topics()
    assert broker.partition_count(topic_name) == 3
    info = broker.describe_topic(topic_name)
    assert info.name == topic_name
    assert info.partitions == 3
    assert info.config["cleanup.policy"] == "compact"
    assert info.start_offsets == [0, 0, 0]
    assert info.end_offsets == [0, 0, 0]

    broker.create_topic(topic_name, partitions=3)          # exist_ok by default
    with pytest.raises(errors.TopicExists, match=topic_name):
        broker.create_topic(topic_name, partitions=3, exist_ok=False)

    broker.delete_topic(topic_name)
    assert topic_name not in broker.list_topics()
    assert broker.partition_count(topic_name) is None
    with pytest.raises(errors.UnknownTopic, match=topic_name):
        broker.describe_topic(topic_name)
    with pytest.raises(errors.UnknownTopic, match=topic_name):
        broker.delete_topic(topic_name)

    broker.create_topic("a", partitions=2, config={"retention.ms": 1000})
    broker.create_topic("b", partitions=1)
    with pytest.raises(TopicExists):
        broker.create_topic("a", exist_ok=False)
    broker.produce("a", [OutgoingRecord(None, b"v", partition=1)] * 3)
    info = broker.describe_topic("a")
    assert info.partitions == 2 and info.config["retention.ms"] == "1000"
    assert info.start_offsets == [0, 0] and info.end_offsets == [0, 3]
    assert broker.list_topics() == ["a", "b"]
    broker.delete_topic("a")
    assert broker.list_topics() == ["b"]
    with pytest.raises(UnknownTopic):
        broker.describe_topic("a")
    with pytest.raises(UnknownTopic):
        broker.delete_topic("a")
    # a new topic of the same name starts again at offset 0
    assert broker.produce("a", [OutgoingRecord(None, b"v")])[0].offset == 0


def test_invalid_topic_name_is_refused(broker):
    with pytest.raises(errors.InvalidTopicName, match="bad name"):
        broker.create_topic("bad name!")


def test_zero_partitions_is_refused(broker, topic_name):
    with pytest.raises(errors.InvalidConfig, match="partitions=0"):
        broker.create_topic(topic_name, partitions=0)


def test_produce_to_missing_topic_creates_it_with_default_partitions(broker):
    assert "auto" not in broker.list_topics()
    broker.produce("auto", [OutgoingRecord(None, b"v")])
    assert "auto" in broker.list_topics()
    assert broker.partition_count("auto") == 4
    assert broker.partition_count("missing") is None


# -- produce and fetch ---------------------------------------------------------------


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


def test_produce_fetch_round_trip_with_keys_headers_timestamps(broker, topic_name):
    broker.create_topic(topic_name, partitions=2)
    records = [OutgoingRecord(f"k{i}".encode(), f"v{i}".encode(),
                              [("trace", f"t{i}".encode()), ("n", b"")] if i % 2 else [],
                              1_700_000_000_000 + i, partition=i % 2)
               for i in range(10)]
    metadata = broker.produce(topic_name, records, acks=1)

    assert [m.partition for m in metadata] == [i % 2 for i in range(10)]
    assert [m.offset for m in metadata if m.partition == 0] == [0, 1, 2, 3, 4]
    assert [m.timestamp for m in metadata] == [r.timestamp for r in records]

    got = broker.fetch(TopicPartition(topic_name, 1), 0, max_records=100, timeout=5)
    assert [m.offset for m in got] == [0, 1, 2, 3, 4]
    assert [m.key for m in got] == [b"k1", b"k3", b"k5", b"k7", b"k9"]
    assert [m.value for m in got] == [b"v1", b"v3", b"v5", b"v7", b"v9"]
    assert got[0].headers == [("trace", b"t1"), ("n", b"")]
    assert got[0].timestamp == 1_700_000_000_001
    assert got[0].timestamp_type == CREATE_TIME
    assert all(m.topic == topic_name and m.partition == 1 for m in got)

    unheadered = broker.fetch(TopicPartition(topic_name, 0), 0, max_records=2, timeout=5)
    assert [m.offset for m in unheadered] == [0, 1]
    assert unheadered[0].headers == []
    # The fetcher continues where the last fetch stopped, and re-reads on request.
    assert [m.offset for m in broker.fetch(TopicPartition(topic_name, 0), 2, 100, 5)] \
        == [2, 3, 4]
    assert [m.offset for m in broker.fetch(TopicPartition(topic_name, 0), 1, 2, 5)] == [1, 2]
    assert broker.describe_topic(topic_name).end_offsets == [5, 5]
    assert broker.offsets(TopicPartition(topic_name, 1)) == (0, 5)


def test_headers_keys_and_none_values_round_trip(broker):
    headers = [("trace", b"abc"), ("empty", b""), ("trace", b"dup")]
    broker.produce("t", [OutgoingRecord(b"k", None, headers, partition=0),
                         OutgoingRecord(None, b"v", [], partition=0)])
    first, second = broker.fetch(TopicPartition("t", 0), 0)
    assert first.headers == headers and first.key == b"k" and first.value is None
    assert second.headers == [] and second.key is None and second.value == b"v"
    # a list the reader may change, the same one on every read
    second.headers.append(("added", b"1"))
    assert second.headers == [("added", b"1")] and type(first.headers) is list
    again = broker.fetch(TopicPartition("t", 0), 0)
    assert again[0] == first and again[1].headers == []
    assert again[0] == Message("t", 0, 0, first.timestamp, first.timestamp_type, b"k",
                               None, list(headers))


def test_create_time_keeps_producer_timestamp(broker):
    broker.create_topic("t", partitions=1, config={"message.timestamp.type": "CreateTime"})
    before = int(time.time() * 1000)
    metas = broker.produce("t", [OutgoingRecord(None, b"a", timestamp=1234567),
                                 OutgoingRecord(None, b"b")])
    after = int(time.time() * 1000)
    assert metas[0].timestamp == 1234567
    assert before <= metas[1].timestamp <= after
    got = broker.fetch(TopicPartition("t", 0), 0)
    assert got[0].timestamp == 1234567 and got[0].timestamp_type == CREATE_TIME
    assert before <= got[1].timestamp <= after


def test_fetch_from_middle_and_max_records(broker):
    broker.create_topic("t", partitions=1)
    broker.produce("t", [OutgoingRecord(b"k", b"%d" % i) for i in range(100)])
    got = broker.fetch(TopicPartition("t", 0), 37, max_records=10)
    assert [m.offset for m in got] == list(range(37, 47))
    assert broker.fetch(TopicPartition("t", 0), 100) == []


def test_fetch_with_no_timeout_still_returns_records_already_written(broker, topic_name):
    # Table restore reads with timeout=0 and takes an empty answer as "at the end".
    broker.produce(topic_name, [OutgoingRecord(b"k", b"v%d" % i, partition=1)
                                for i in range(5)])
    tp = TopicPartition(topic_name, 1)
    assert [m.value for m in broker.fetch(tp, 0, 100)] == [b"v0", b"v1", b"v2", b"v3",
                                                            b"v4"]
    started = time.monotonic()
    assert broker.fetch(tp, 5, 100) == []
    assert broker.fetch(TopicPartition(topic_name, 2), 0, 100) == []   # empty partition
    assert time.monotonic() - started < 1.5


def test_fetch_waits_up_to_timeout(broker, topic_name):
    broker.create_topic("t", partitions=1)
    start = time.monotonic()
    assert broker.fetch(TopicPartition("t", 0), 0, timeout=0.2) == []
    assert 0.19 <= time.monotonic() - start < 1.0

    broker.produce(topic_name, [OutgoingRecord(b"k", b"v", partition=0)])
    tp = TopicPartition(topic_name, 0)
    assert len(broker.fetch(tp, 0, 10, timeout=5)) == 1
    started = time.monotonic()
    assert broker.fetch(tp, 1, 10, timeout=0.3) == []
    assert time.monotonic() - started < 2
    broker.produce(topic_name, [OutgoingRecord(b"k", b"later", partition=0)])
    assert [m.value for m in broker.fetch(tp, 1, 10, timeout=5)] == [b"later"]


def test_fetch_past_end_is_out_of_range(broker, topic_name):
    broker.produce("t", [OutgoingRecord(None, b"v", partition=0)])
    assert broker.fetch(TopicPartition("t", 0), 1) == []
    with pytest.raises(OffsetOutOfRange):
        broker.fetch(TopicPartition("t", 0), 5)

    broker.produce(topic_name, [OutgoingRecord(b"k", b"v", partition=0)] * 3)
    tp = TopicPartition(topic_name, 0)
    assert len(broker.fetch(tp, 0, 10, timeout=5)) == 3
    with pytest.raises(errors.OffsetOutOfRange, match=rf"{topic_name}\[0\].*offset 9"):
        broker.fetch(tp, 9, 10, timeout=1)
    assert [m.offset for m in broker.fetch(tp, 2, 10, timeout=5)] == [2]


def test_records_from_another_broker_instance_are_seen(url):
    a = connect(url, default_partitions=1)
    b = connect(url, default_partitions=1)
    a.create_topic("t", partitions=1)
    assert b.fetch(TopicPartition("t", 0), 0) == []
    a.produce("t", [OutgoingRecord(None, b"x")])
    start = time.monotonic()
    got = b.fetch(TopicPartition("t", 0), 0, timeout=2)
    assert [m.value for m in got] == [b"x"]
    assert time.monotonic() - start < 0.5
    # and b appends after a's records, not over them
    assert b.produce("t", [OutgoingRecord(None, b"y")])[0].offset == 1
    assert a.produce("t", [OutgoingRecord(None, b"z")])[0].offset == 2


# -- partitioning ----------------------------------------------------------------------


def test_keyed_records_follow_kafka_partitioner(broker, topic_name):
    broker.create_topic("t", partitions=4)
    keys = [b"21", b"foobar", b"abc", b"vendor-1", b"vendor-2"]
    metas = broker.produce("t", [OutgoingRecord(k, b"v") for k in keys])
    assert [m.partition for m in metas] == [partition_for_key(k, 4) for k in keys]

    partitions = 7
    broker.create_topic(topic_name, partitions=partitions)
    rng = random.Random(6)
    keys = [f"vendor-{i}-{'x' * (i % 13)}".encode() for i in range(900)]
    keys += [b"", b"\x00", b"\xff" * 3, "taxi-é".encode()]
    keys += [rng.randbytes(rng.randrange(1, 64)) for _ in range(96)]
    assert len(keys) == 1000
    metadata = broker.produce(topic_name, [OutgoingRecord(k, b"") for k in keys])
    landed = [m.partition for m in metadata]
    assert landed == [partition_for_key(k, partitions) for k in keys]
    assert len(set(landed)) == partitions


def test_str_key_hashes_as_its_utf8_bytes(broker):
    broker.create_topic("t", partitions=8)
    metas = broker.produce("t", [OutgoingRecord("clé", b"1"),
                                 OutgoingRecord("clé".encode(), b"2")])
    assert metas[0].partition == metas[1].partition == partition_for_key("clé".encode(), 8)


def test_explicit_partition_wins_over_key(broker):
    broker.create_topic("t", partitions=4)
    key = b"abc"
    other = (partition_for_key(key, 4) + 1) % 4
    meta = broker.produce("t", [OutgoingRecord(key, b"v", partition=other)])[0]
    assert meta.partition == other
    assert broker.fetch(TopicPartition("t", other), 0)[0].key == key


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_records_given_as_columns_land_in_their_partition(broker, acks):
    # what a table's commit writes to its changelog: keys and values for one partition
    broker.create_topic("cl", partitions=3)
    broker.produce("cl", [OutgoingRecord(b"before", b"0", partition=2)])
    keys = [b"k%d" % i for i in range(25)]
    values = [b"%d" % i for i in range(24)] + [None]        # a tombstone too
    metadata = broker.produce("cl", PartitionRecords(keys, values, 2), acks=acks)
    assert len(metadata) == 25
    assert {m.partition for m in metadata} == {2}
    if acks != 0:
        assert [m.offset for m in metadata] == list(range(1, 26))
        assert metadata[-1].offset == 25 and metadata[-1].timestamp > 0
    got = broker.fetch(TopicPartition("cl", 2), 1, max_records=100, timeout=5.0)
    assert [(m.key, m.value, list(m.headers or [])) for m in got] == \
        [(k, v, []) for k, v in zip(keys, values)]
    assert broker.describe_topic("cl").end_offsets == [0, 0, 26]
    with pytest.raises(UnknownTopic, match="5"):
        broker.produce("cl", PartitionRecords([b"k"], [b"v"], 5), acks=acks)


# -- acks ------------------------------------------------------------------------------


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_acks_levels_deliver(broker, topic_name, acks):
    records = [OutgoingRecord(b"key-%d" % i, b"v") for i in range(20)]
    metadata = broker.produce(topic_name, records, acks=acks)
    assert len(metadata) == 20
    partitions = broker.partition_count(topic_name)
    assert [m.partition for m in metadata] == \
        [partition_for_key(r.key, partitions) for r in records]
    if acks == 0:
        assert all(m.offset == -1 for m in metadata)   # nobody reports an offset
    else:
        assert all(m.offset >= 0 for m in metadata)
    assert sum(broker.describe_topic(topic_name).end_offsets) == 20


def test_invalid_acks_refused(broker):
    with pytest.raises(errors.InvalidConfig, match="acks"):
        broker.produce("t", [OutgoingRecord(None, b"v")], acks=2)


def test_offset_for_time_finds_the_first_record_at_or_after(broker, topic_name):
    broker.create_topic(topic_name, partitions=1,
                        config={"message.timestamp.type": "CreateTime"})
    tp = TopicPartition(topic_name, 0)
    # two batches; timestamps not in offset order within the second
    broker.produce(topic_name, [OutgoingRecord(None, b"a", timestamp=1000),
                                OutgoingRecord(None, b"b", timestamp=2000)])
    broker.produce(topic_name, [OutgoingRecord(None, b"c", timestamp=5000),
                                OutgoingRecord(None, b"d", timestamp=3000)])
    assert broker.offset_for_time(tp, 0) == (0, 1000)
    assert broker.offset_for_time(tp, 1500) == (1, 2000)
    assert broker.offset_for_time(tp, 2500) == (2, 5000)
    assert broker.offset_for_time(tp, 5000) == (2, 5000)
    assert broker.offset_for_time(tp, 5001) is None
