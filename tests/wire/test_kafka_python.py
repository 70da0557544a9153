"""kafka-python (the course's client) against ``streamkit broker``'s server: it
negotiates its versions from what ApiVersions advertises, finds the topics and
partitions in the log, and creates topics there."""
from __future__ import annotations

import pytest

kafka = pytest.importorskip("kafka", reason="kafka-python is not installed")

from kafka import KafkaAdminClient, KafkaConsumer  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402
from kafka.errors import TopicAlreadyExistsError  # noqa: E402

import streamkit  # noqa: E402
from tests.wire.conftest import Wire  # noqa: E402


def test_a_consumer_finds_the_topics_and_partitions_of_the_log(wire: Wire) -> None:
    with streamkit.Admin(broker="log://", datadir=wire.datadir) as log_admin:
        log_admin.create_topic("orders", 3)
        log_admin.create_topic("clicks", 1)

    consumer = KafkaConsumer(bootstrap_servers=[wire.bootstrap])
    try:
        assert consumer.topics() == {"orders", "clicks"}
        assert consumer.partitions_for_topic("orders") == {0, 1, 2}
        # asked for by name (kafka-python asks to auto-create): reported, not created
        assert not consumer.partitions_for_topic("missing")
    finally:
        consumer.close()
    assert wire.log.partition_count("missing") is None


def test_the_admin_client_lists_creates_and_describes(wire: Wire) -> None:
    admin = KafkaAdminClient(bootstrap_servers=wire.bootstrap)
    try:
        admin.create_topics([NewTopic("payments", 4, 1)])
        assert admin.list_topics() == ["payments"]
        assert wire.log.partition_count("payments") == 4
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic("payments", 2, 1)])
        cluster = admin.describe_cluster()
        assert (cluster["controller_id"], [b["broker_id"] for b in cluster["brokers"]]) \
            == (0, [0])
    finally:
        admin.close()
