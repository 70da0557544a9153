"""streamkit's synchronous Producer, Consumer and Admin clients on kafka:// (tansu,
streamkit broker): the same scripts as on log://, with only the broker URL changed."""
from __future__ import annotations

import json
import uuid

import pytest

from streamkit.clients import Admin, Consumer, Producer
from streamkit.errors import IllegalStateError, InvalidConfig
from streamkit.partitioner import partition_for_key
from streamkit.types import TopicPartition

pytestmark = pytest.mark.kafka


def test_producer_consumer_admin_on_kafka(tansu, topic_name):
    with Admin(tansu) as admin:
        admin.create_topic(topic_name, partitions=3, config={"retention.ms": 60000})
        assert topic_name in admin.list_topics()
        assert admin.describe_topic(topic_name).partitions == 3

    with Producer(tansu, value_serializer=lambda v: json.dumps(v).encode(),
                  acks="all", linger_ms=50, batch_size=100) as producer:
        futures = [producer.send(topic_name, value={"ride": i}, key=f"vendor-{i % 5}",
                                 headers=[("source", b"test")])
                   for i in range(30)]
        producer.flush()
        metadata = [f.get(timeout=10) for f in futures]
    assert [m.partition for m in metadata] == \
        [partition_for_key(f"vendor-{i % 5}".encode(), 3) for i in range(30)]

    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(topic_name, broker=tansu, group_id=group,
                        auto_offset_reset="earliest", enable_auto_commit=False,
                        value_deserializer=json.loads, consumer_timeout_ms=8000,
                        session_timeout_ms=3000)
    rides = []
    for message in consumer:
        rides.append(message.value["ride"])
        assert message.headers == [("source", b"test")]
        if len(rides) == 30:
            break
    assert sorted(rides) == list(range(30))
    consumer.commit()
    consumer.close()

    with Admin(tansu) as admin:
        assert group in admin.list_groups()
        offsets = admin.group_offsets(group)
        assert sum(o.committed for o in offsets) == 30
        assert all(o.lag == 0 for o in offsets)
        admin.delete_topic(topic_name)
        assert topic_name not in admin.list_topics()


def test_consumer_without_group_reads_every_partition(tansu, topic_name):
    with Producer(tansu, default_partitions=2) as producer:
        for i in range(10):
            producer.send(topic_name, value=b"%d" % i, partition=i % 2)
    consumer = Consumer(topic_name, broker=tansu, auto_offset_reset="earliest",
                        consumer_timeout_ms=3000)
    got = sorted((m.partition, m.offset) for m in consumer)
    assert got == [(p, o) for p in range(2) for o in range(5)]
    assert consumer.end_offsets([TopicPartition(topic_name, 0)]) == \
        {TopicPartition(topic_name, 0): 5}
    consumer.close()


def _host_port(tansu: str) -> str:
    return tansu.removeprefix("kafka://")


def test_kafka_python_script_with_bootstrap_servers(tansu, topic_name):
    """A kafka-python script's settings, with bootstrap_servers, on a Kafka-protocol
    broker; the consumer subscribes after it is made (the course's 2023 consumer)."""
    servers = [_host_port(tansu)]
    with Producer(bootstrap_servers=servers, client_id="parity-test", retries=3,
                  compression_type="gzip", request_timeout_ms=10000, max_block_ms=5000,
                  api_version=(2, 5, 0), security_protocol="PLAINTEXT", acks="all",
                  value_serializer=lambda v: json.dumps(v).encode()) as producer:
        for i in range(5):
            producer.send(topic_name, value={"n": i}, timestamp_ms=1_000 * (i + 1))
        producer.flush()
        assert producer.metrics()["producer-metrics"]["record-send-total"] == 5
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(bootstrap_servers=_host_port(tansu), group_id=group,
                        auto_offset_reset="earliest", value_deserializer=json.loads,
                        consumer_timeout_ms=8000, session_timeout_ms=6000,
                        heartbeat_interval_ms=1000, max_poll_interval_ms=60000,
                        fetch_max_wait_ms=50, client_id="parity-test")
    consumer.subscribe([topic_name])
    got = []
    for message in consumer:
        got.append(message.value["n"])
        if len(got) == 5:
            break
    assert sorted(got) == list(range(5))
    tp = TopicPartition(topic_name, 0)
    assert consumer.offsets_for_times({tp: 2_500}) == {tp: (2, 3_000)}
    assert consumer.offsets_for_times({tp: 9_000}) == {tp: None}
    calls = []
    consumer.commit_async(callback=lambda offsets, error: calls.append(error))
    assert calls == [None] and consumer.committed(tp) == 5
    assert consumer.metrics()["consumer-fetch-manager-metrics"]["records-consumed-total"] == 5
    consumer.close()


def test_settings_reach_librdkafka(tansu, topic_name):
    # librdkafka refuses a max poll interval below the session timeout: the setting
    # reached it
    with pytest.raises(InvalidConfig, match="max.poll.interval.ms"):
        Consumer(topic_name, bootstrap_servers=_host_port(tansu), group_id="g",
                 session_timeout_ms=6000, max_poll_interval_ms=3000)


def test_assign_and_commit_without_joining(tansu, topic_name):
    with Producer(tansu, default_partitions=2) as producer:
        for i in range(6):
            producer.send(topic_name, value=b"%d" % i, partition=i % 2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    tp1 = TopicPartition(topic_name, 1)
    consumer = Consumer(broker=tansu, group_id=group, auto_offset_reset="earliest",
                        consumer_timeout_ms=3000)
    consumer.assign([tp1])
    with pytest.raises(IllegalStateError):
        consumer.subscribe([topic_name])
    got = []
    for message in consumer:
        got.append(message.value)
        if len(got) == 3:
            break
    assert got == [b"1", b"3", b"5"]
    consumer.seek_to_beginning()
    assert consumer.position(tp1) == 0
    consumer.seek_to_end()
    assert consumer.position(tp1) == 3
    consumer.commit()
    consumer.close()
    again = Consumer(broker=tansu, group_id=group, auto_offset_reset="earliest",
                     consumer_timeout_ms=500)
    again.assign([tp1])
    assert again.committed(tp1) == 3 and again.position(tp1) == 3
    again.close()


def test_listener_seeks_when_partitions_are_assigned(tansu, topic_name):
    """kafka-python's way to start from the beginning whatever was committed: seek in
    on_partitions_assigned."""
    with Producer(tansu) as producer:
        for i in range(3):
            producer.send(topic_name, value=b"%d" % i)
    group = f"g-{uuid.uuid4().hex[:8]}"
    tp = TopicPartition(topic_name, 0)
    with Consumer(broker=tansu, group_id=group) as setter:   # commits without joining
        setter.assign([tp])
        setter.commit({tp: 3})
    consumer = Consumer(broker=tansu, group_id=group, consumer_timeout_ms=8000,
                        session_timeout_ms=6000)

    class Rewind:
        def on_partitions_revoked(self, revoked):
            pass

        def on_partitions_assigned(self, assigned):
            consumer.seek_to_beginning(*assigned)

    consumer.subscribe([topic_name], listener=Rewind())
    got = []
    for message in consumer:
        got.append(message.value)
        if len(got) == 3:
            break
    assert got == [b"0", b"1", b"2"]
    consumer.close()
