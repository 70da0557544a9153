"""The kafka:// driver against a real Kafka-protocol broker (tansu): topics, produce,
fetch, acks, partition parity with the embedded log, and errors."""
from __future__ import annotations

import random
import time

import pytest

from streamkit import errors
from streamkit.partitioner import partition_for_key
from streamkit.transport import connect
from streamkit.transport.kafka import KafkaBroker
from streamkit.types import CREATE_TIME, OutgoingRecord, TopicPartition

pytestmark = pytest.mark.kafka


def test_connect_gives_a_kafka_broker(tansu):
    broker = connect(tansu, default_partitions=3)
    try:
        assert isinstance(broker, KafkaBroker)
        assert broker.default_partitions == 3
        assert broker.servers == tansu.removeprefix("kafka://")
    finally:
        broker.close()


def test_create_describe_delete_topic(broker, topic_name):
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


def test_invalid_topic_name_is_refused(broker):
    with pytest.raises(errors.InvalidTopicName, match="bad name"):
        broker.create_topic("bad name!")


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


def test_fetch_at_the_end_waits_at_most_timeout(broker, topic_name):
    broker.produce(topic_name, [OutgoingRecord(b"k", b"v", partition=0)])
    tp = TopicPartition(topic_name, 0)
    assert len(broker.fetch(tp, 0, 10, timeout=5)) == 1
    started = time.monotonic()
    assert broker.fetch(tp, 1, 10, timeout=0.3) == []
    assert time.monotonic() - started < 2
    broker.produce(topic_name, [OutgoingRecord(b"k", b"later", partition=0)])
    assert [m.value for m in broker.fetch(tp, 1, 10, timeout=5)] == [b"later"]


def test_produce_creates_a_missing_topic_with_default_partitions(broker, topic_name):
    broker.produce(topic_name, [OutgoingRecord(None, b"x")])
    assert broker.partition_count(topic_name) == broker.default_partitions


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


def test_unknown_acks_is_refused(broker, topic_name):
    with pytest.raises(errors.InvalidConfig, match="acks"):
        broker.produce(topic_name, [OutgoingRecord(b"k", b"v")], acks=2)


def test_partition_parity_with_the_embedded_log_for_1000_keys(broker, topic_name):
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


def test_explicit_partition_is_honoured_over_the_key(broker, topic_name):
    broker.create_topic(topic_name, partitions=4)
    key = b"some-key"
    other = (partition_for_key(key, 4) + 1) % 4
    [meta] = broker.produce(topic_name, [OutgoingRecord(key, b"v", partition=other)])
    assert meta.partition == other


def test_producing_to_a_partition_that_does_not_exist_names_it(broker, topic_name):
    broker.create_topic(topic_name, partitions=2)
    with pytest.raises(errors.BrokerError, match=rf"{topic_name}\[5\]"):
        broker.produce(topic_name, [OutgoingRecord(b"k", b"v", partition=5)])


def test_replication_factor_passes_through_to_kafka(broker, topic_name):
    # The embedded log refuses factors above 1; on Kafka the cluster decides. tansu (one
    # broker) accepts any factor; a real single-broker Kafka answers
    # INVALID_REPLICATION_FACTOR, which becomes InvalidConfig.
    broker.create_topic(topic_name, partitions=2, replication_factor=3)
    assert broker.partition_count(topic_name) == 2


def test_zero_partitions_is_refused(broker, topic_name):
    with pytest.raises(errors.InvalidConfig, match="partitions=0"):
        broker.create_topic(topic_name, partitions=0)


def test_cleanup_is_a_no_op(broker, topic_name):
    broker.produce(topic_name, [OutgoingRecord(b"k", b"v")])
    broker.cleanup(topic_name)
    assert sum(broker.describe_topic(topic_name).end_offsets) == 1


def test_unreachable_broker_fails_fast_naming_the_servers():
    broker = KafkaBroker("kafka://127.0.0.1:1,127.0.0.1:2", timeout=1.5)
    started = time.monotonic()
    with pytest.raises(errors.BrokerError, match=r"127\.0\.0\.1:1,127\.0\.0\.1:2"):
        broker.list_topics()
    with pytest.raises(errors.BrokerError, match=r"127\.0\.0\.1:1"):
        broker.produce("rides", [OutgoingRecord(b"k", b"v")])
    assert time.monotonic() - started < 10
    broker.close()


@pytest.mark.parametrize("url", ["kafka://", "kafka://nohost", "log://x", "kafka://h:p"])
def test_bad_urls_are_refused(url):
    with pytest.raises(errors.InvalidBrokerURL):
        KafkaBroker(url)


def test_fetch_past_the_end_raises_offset_out_of_range(broker, topic_name):
    broker.produce(topic_name, [OutgoingRecord(b"k", b"v", partition=0)] * 3)
    tp = TopicPartition(topic_name, 0)
    assert len(broker.fetch(tp, 0, 10, timeout=5)) == 3
    with pytest.raises(errors.OffsetOutOfRange, match=rf"{topic_name}\[0\].*offset 9"):
        broker.fetch(tp, 9, 10, timeout=1)
    assert [m.offset for m in broker.fetch(tp, 2, 10, timeout=5)] == [2]


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


def test_an_unknown_librdkafka_setting_is_an_invalid_config(tansu):
    with pytest.raises(errors.InvalidConfig, match="no.such.setting"):
        KafkaBroker(tansu, config={"no.such.setting": "1"})
