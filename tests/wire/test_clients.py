"""confluent-kafka's AdminClient (librdkafka 2.x) against ``streamkit broker``'s server:
it sees what streamkit's own clients wrote to the log, and creates topics in it."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from confluent_kafka import KafkaError, KafkaException  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

import streamkit  # noqa: E402
from tests.wire.conftest import Wire, start_wire  # noqa: E402


def admin(wire: Wire) -> AdminClient:
    return AdminClient({"bootstrap.servers": wire.bootstrap})


def test_list_topics_sees_what_a_producer_wrote_to_the_log(wire: Wire) -> None:
    producer = streamkit.Producer(broker="log://", datadir=wire.datadir)
    with streamkit.Admin(broker="log://", datadir=wire.datadir) as log_admin:
        log_admin.create_topic("orders", 3)
    for i in range(10):
        producer.send("orders", value=b"v%d" % i, key=b"k%d" % i)
        producer.send("clicks", value=b"c")          # created by the send, 1 partition
    producer.close()

    metadata = admin(wire).list_topics(timeout=10)

    assert {name: len(t.partitions) for name, t in metadata.topics.items()} == \
        {"orders": 3, "clicks": 1}
    assert [(b.id, b.host, b.port) for b in metadata.brokers.values()] == \
        [(0, "127.0.0.1", wire.port)]
    for partition in metadata.topics["orders"].partitions.values():
        assert (partition.leader, partition.replicas, partition.isrs) == (0, [0], [0])
        assert partition.error is None


def test_a_missing_topic_is_reported_and_not_created(wire: Wire) -> None:
    metadata = admin(wire).list_topics(topic="missing", timeout=10)

    assert metadata.topics["missing"].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert "missing" not in wire.log.list_topics()


def test_create_topics_creates_them_in_the_log(wire: Wire) -> None:
    client = admin(wire)
    futures = client.create_topics([NewTopic("payments", num_partitions=4),
                                    NewTopic("audit", num_partitions=1,
                                             config={"retention.ms": "60000"})])
    for future in futures.values():
        future.result(timeout=10)

    assert wire.log.partition_count("payments") == 4
    assert wire.log.describe_topic("audit").config["retention.ms"] == "60000"
    assert len(client.list_topics(timeout=10).topics["payments"].partitions) == 4


@pytest.mark.parametrize(("topic", "code"), [
    (NewTopic("payments", num_partitions=2), KafkaError.TOPIC_ALREADY_EXISTS),
    (NewTopic("replicated", num_partitions=1, replication_factor=3),
     KafkaError.INVALID_REPLICATION_FACTOR),
    (NewTopic("bad name!", num_partitions=1), KafkaError.TOPIC_EXCEPTION),
    (NewTopic("badconfig", num_partitions=1, config={"cleanup.policy": "shred"}),
     KafkaError.INVALID_CONFIG),
])
def test_create_topics_refusals_carry_kafkas_error_codes(wire: Wire, topic: NewTopic,
                                                         code: int) -> None:
    wire.log.create_topic("payments", 2)

    client = admin(wire)          # (kept: a collected client fails its futures)
    future = client.create_topics([topic])[topic.topic]

    with pytest.raises(KafkaException) as raised:
        future.result(timeout=10)
    assert raised.value.args[0].code() == code
    assert wire.log.partition_count("replicated") is None
    assert wire.log.partition_count("badconfig") is None


def test_validate_only_creates_nothing(wire: Wire) -> None:
    client = admin(wire)
    future = client.create_topics([NewTopic("dry", num_partitions=2)],
                                  validate_only=True)["dry"]
    future.result(timeout=10)

    assert wire.log.partition_count("dry") is None


def test_delete_topics_deletes_them_from_the_log(wire: Wire) -> None:
    wire.log.create_topic("old", 2)
    client = admin(wire)

    client.delete_topics(["old"])["old"].result(timeout=10)
    with pytest.raises(KafkaException) as raised:
        client.delete_topics(["never"])["never"].result(timeout=10)

    assert wire.log.partition_count("old") is None
    assert raised.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


@pytest.fixture
def auto_create_wire(tmp_path: Path) -> Iterator[Wire]:
    yield from start_wire(tmp_path, auto_create_topics=True)


def test_auto_create_topics_creates_a_topic_metadata_asks_for(auto_create_wire: Wire
                                                              ) -> None:
    metadata = admin(auto_create_wire).list_topics(topic="created", timeout=10)

    assert metadata.topics["created"].error is None
    assert len(metadata.topics["created"].partitions) == 1
    assert auto_create_wire.log.partition_count("created") == 1
