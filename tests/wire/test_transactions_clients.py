"""Transactions through ``streamkit broker`` with kafka-python and aiokafka: their
transactional producers commit and abort, their read_committed consumers read only what
was committed and reach the end past the markers, their read_uncommitted consumers read
the aborted records too (as on Kafka) but never a marker; and a ``log://`` producer with
the same transactional id fences a Kafka client's (decisions 960-962)."""
from __future__ import annotations

import pytest

kafka = pytest.importorskip("kafka", reason="kafka-python is not installed")
aiokafka = pytest.importorskip("aiokafka", reason="aiokafka is not installed")

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from aiokafka import TopicPartition as AioPartition  # noqa: E402
from kafka import KafkaConsumer, KafkaProducer  # noqa: E402
from kafka import TopicPartition as KafkaPartition  # noqa: E402
from kafka.errors import ProducerFencedError  # noqa: E402

from streamkit.types import OutgoingRecord, TopicPartition  # noqa: E402
from tests.wire.conftest import Wire  # noqa: E402


def kafka_python_read(wire: Wire, topic: str, isolation: str) -> tuple[list[bytes], int]:
    """The values a kafka-python consumer of ``isolation`` reads from the start of
    partition 0 (until 2 s pass without one), and its position then."""
    consumer = KafkaConsumer(bootstrap_servers=wire.bootstrap, isolation_level=isolation,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             consumer_timeout_ms=2000)
    tp = KafkaPartition(topic, 0)
    consumer.assign([tp])
    values = [m.value for m in consumer]
    position = consumer.position(tp)
    consumer.close()
    return values, position


def test_kafka_python_commits_and_aborts(wire: Wire) -> None:
    wire.log.create_topic("rides", 1)
    producer = KafkaProducer(bootstrap_servers=wire.bootstrap, transactional_id="kp-tx")
    producer.init_transactions()
    producer.begin_transaction()
    producer.send("rides", b"a")
    producer.send("rides", b"b")
    producer.commit_transaction()
    producer.begin_transaction()
    producer.send("rides", b"dropped")
    producer.flush()
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send("rides", b"c")
    producer.commit_transaction()
    producer.close()

    end = wire.log.offsets(TopicPartition("rides", 0))[1]
    assert end == 7                                   # 4 records and 3 markers
    assert kafka_python_read(wire, "rides", "read_committed") == ([b"a", b"b", b"c"], end)
    assert kafka_python_read(wire, "rides", "read_uncommitted") == \
        ([b"a", b"b", b"dropped", b"c"], end)


def test_a_log_producer_fences_a_kafka_client_with_the_same_id(wire: Wire) -> None:
    wire.log.create_topic("orders", 1)
    producer = KafkaProducer(bootstrap_servers=wire.bootstrap, transactional_id="shared")
    producer.init_transactions()
    producer.begin_transaction()
    producer.send("orders", b"from-kafka-python")
    producer.flush()

    tx = wire.log.transactional_producer("shared")   # fences it, aborts its transaction
    tx.begin()
    tx.send("orders", [OutgoingRecord(None, b"from-log")])
    tx.commit()
    with pytest.raises(ProducerFencedError):
        producer.commit_transaction()
    producer.close(timeout=1)
    assert kafka_python_read(wire, "orders", "read_committed")[0] == [b"from-log"]


async def aiokafka_read(wire: Wire, topic: str, isolation: str) -> tuple[list[bytes], int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=wire.bootstrap, isolation_level=isolation,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    tp = AioPartition(topic, 0)
    consumer.assign([tp])
    values: list[bytes] = []
    try:
        while batch := await consumer.getmany(timeout_ms=1500):
            values += [m.value for ms in batch.values() for m in ms]
        return values, await consumer.position(tp)
    finally:
        await consumer.stop()


@pytest.mark.anyio
async def test_aiokafka_commits_aborts_and_sends_offsets(wire: Wire) -> None:
    wire.log.create_topic("payments", 1)
    producer = AIOKafkaProducer(bootstrap_servers=wire.bootstrap,
                                transactional_id="aio-tx")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait("payments", b"a")
        with pytest.raises(RuntimeError):
            async with producer.transaction():
                await producer.send_and_wait("payments", b"dropped")
                raise RuntimeError("abort")
        async with producer.transaction():
            await producer.send_and_wait("payments", b"c")
            await producer.send_offsets_to_transaction(
                {AioPartition("payments", 0): 2}, "auditors")
    finally:
        await producer.stop()

    end = wire.log.offsets(TopicPartition("payments", 0))[1]
    assert end == 6                                   # 3 records and 3 markers
    assert await aiokafka_read(wire, "payments", "read_committed") == ([b"a", b"c"], end)
    assert await aiokafka_read(wire, "payments", "read_uncommitted") == \
        ([b"a", b"dropped", b"c"], end)
    assert [(o.topic, o.partition, o.committed)
            for o in wire.log.group_offsets("auditors")] == [("payments", 0, 2)]
