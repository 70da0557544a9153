"""Produce, fetch, offsets and topics on log:// and memory://."""
from __future__ import annotations

from streamkit.partitioner import partition_for_key
from streamkit.transport import connect
from streamkit.types import CREATE_TIME, Message, OutgoingRecord, TopicPartition


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


def test_murmur2_matches_kafka_vectors():
    from streamkit.partitioner import murmur2
    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"abc") == 479470107


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


def test_unknown_partition_refused(broker):
    import pytest
    from streamkit.errors import UnknownTopic
    broker.create_topic("t", partitions=2)
    with pytest.raises(UnknownTopic, match="no partition 5"):
        broker.produce("t", [OutgoingRecord(None, b"v", partition=5)])
    with pytest.raises(UnknownTopic, match="no partition 2"):
        broker.fetch(TopicPartition("t", 2), 0)


def test_unkeyed_records_spread_over_partitions(broker):
    broker.create_topic("t", partitions=4)
    metas = broker.produce("t", [OutgoingRecord(None, b"v")] * 100)
    counts = [sum(1 for m in metas if m.partition == p) for p in range(4)]
    assert counts == [25, 25, 25, 25]
    # and across calls, not always starting at the same partition
    singles = [broker.produce("t", [OutgoingRecord(None, b"v")])[0].partition
               for _ in range(8)]
    assert set(singles) == {0, 1, 2, 3}


def test_create_time_keeps_producer_timestamp(broker):
    import time
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


def test_log_append_time_stamps_the_append(broker):
    import time
    from streamkit.types import LOG_APPEND_TIME
    broker.create_topic("t", partitions=1,
                        config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    meta = broker.produce("t", [OutgoingRecord(None, b"a", timestamp=1234567)])[0]
    after = int(time.time() * 1000)
    assert before <= meta.timestamp <= after
    got = broker.fetch(TopicPartition("t", 0), 0)[0]
    assert got.timestamp == meta.timestamp and got.timestamp_type == LOG_APPEND_TIME


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


def test_produce_to_missing_topic_creates_it_with_default_partitions(broker):
    assert "auto" not in broker.list_topics()
    broker.produce("auto", [OutgoingRecord(None, b"v")])
    assert "auto" in broker.list_topics()
    assert broker.partition_count("auto") == 4
    assert broker.partition_count("missing") is None


def test_describe_list_delete_topic(broker):
    import pytest
    from streamkit.errors import TopicExists, UnknownTopic
    broker.create_topic("a", partitions=2, config={"retention.ms": 1000})
    broker.create_topic("b", partitions=1)
    with pytest.raises(TopicExists):
        broker.create_topic("a", exist_ok=False)
    broker.produce("a", [OutgoingRecord(None, b"v", partition=1)] * 3)
    info = broker.describe_topic("a")
    assert info.partitions == 2 and info.config["retention.ms"] == "1000"
    assert info.config["cleanup.policy"] == "delete"
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


def test_fetch_past_end_is_out_of_range(broker):
    import pytest
    from streamkit.errors import OffsetOutOfRange
    broker.produce("t", [OutgoingRecord(None, b"v", partition=0)])
    assert broker.fetch(TopicPartition("t", 0), 1) == []
    with pytest.raises(OffsetOutOfRange):
        broker.fetch(TopicPartition("t", 0), 5)


def test_fetch_waits_up_to_timeout(broker):
    import time
    broker.create_topic("t", partitions=1)
    start = time.monotonic()
    assert broker.fetch(TopicPartition("t", 0), 0, timeout=0.2) == []
    assert 0.19 <= time.monotonic() - start < 1.0


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
    import struct
    from pathlib import Path
    root = Path(log_url[len("log://"):])
    for p in range(2):
        base, pos = struct.unpack("<qq", (root / "t" / str(p) / "synced").read_bytes())
        assert base == 0 and pos == (root / "t" / str(p) / f"{0:020d}.log").stat().st_size


def test_invalid_acks_refused(broker):
    import pytest
    from streamkit.errors import InvalidConfig
    with pytest.raises(InvalidConfig, match="acks"):
        broker.produce("t", [OutgoingRecord(None, b"v")], acks=2)


def test_records_from_another_broker_instance_are_seen(url):
    import time
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


def test_reset_memory_forgets_a_memory_log():
    from streamkit.log.broker import reset_memory
    connect("memory://to-reset").produce("t", [OutgoingRecord(None, b"v")])
    assert connect("memory://to-reset").list_topics() == ["t"]
    reset_memory("to-reset")
    assert connect("memory://to-reset").list_topics() == []
