"""kafka-python (the course's client) against ``streamkit broker``'s server: it
negotiates its versions from what ApiVersions advertises, finds the topics and
partitions in the log, and creates topics there; its consumer reads what streamkit
wrote, and its producer (as the course writes it) writes to the log."""
from __future__ import annotations

import json
import time

import pytest

kafka = pytest.importorskip("kafka", reason="kafka-python is not installed")

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402
from kafka.errors import TopicAlreadyExistsError  # noqa: E402

import streamkit  # noqa: E402
from streamkit.types import TopicPartition as LogPartition  # noqa: E402
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


def test_a_consumer_reads_what_a_log_producer_wrote(wire: Wire) -> None:
    producer = streamkit.Producer(broker="log://", datadir=wire.datadir)
    for i in range(20):
        producer.send("orders", value=b"v%d" % i, key=b"k%d" % i, headers=[("h", b"x")])
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=[wire.bootstrap], enable_auto_commit=False)
    try:
        partition = TopicPartition("orders", 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 20 and time.monotonic() < deadline:
            for messages in consumer.poll(timeout_ms=500).values():
                got += messages
        assert consumer.end_offsets([partition]) == {partition: 20}
    finally:
        consumer.close()
    assert [(m.offset, m.key, m.value, m.headers) for m in got] == \
        [(i, b"k%d" % i, b"v%d" % i, [("h", b"x")]) for i in range(20)]


@pytest.mark.filterwarnings("ignore:value_serializer does not implement")  # (the course's)
def test_the_courses_producer_sends_json_the_log_keeps(wire: Wire) -> None:
    wire.log.create_topic("rides", 1)
    producer = KafkaProducer(bootstrap_servers=[f"127.0.0.1:{wire.port}"],
                             value_serializer=lambda v: json.dumps(v).encode())
    try:
        futures = [producer.send("rides", {"ride": i, "km": i * 1.5}) for i in range(25)]
        producer.flush(10)
        offsets = [f.get(timeout=10).offset for f in futures]
    finally:
        producer.close()

    assert offsets == list(range(25))
    messages = wire.log.fetch(LogPartition("rides", 0), 0)
    assert [json.loads(m.value) for m in messages] == \
        [{"ride": i, "km": i * 1.5} for i in range(25)]
