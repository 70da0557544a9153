"""streamkit's synchronous Producer, Consumer and Admin clients on kafka:// (tansu):
the same scripts as on log://, with only the broker URL changed."""
from __future__ import annotations

import json
import uuid

import pytest

from streamkit.clients import Admin, Consumer, Producer
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
