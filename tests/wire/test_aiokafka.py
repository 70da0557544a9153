"""aiokafka (the asyncio client Faust uses) against the server, without a group
(``assign()``): its producer writes what the log keeps, its consumer reads it back and
is woken by a ``log://`` producer's append."""
from __future__ import annotations

import time

import anyio
import pytest

aiokafka = pytest.importorskip("aiokafka", reason="aiokafka is not installed")

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402

import streamkit  # noqa: E402
from streamkit.types import TopicPartition as LogPartition  # noqa: E402
from tests.wire.conftest import Wire  # noqa: E402


@pytest.mark.anyio
@pytest.mark.parametrize("options", [{}, {"enable_idempotence": True,
                                          "compression_type": "gzip"}])
async def test_aiokafka_producer_writes_and_consumer_reads_back(wire: Wire,
                                                                options: dict) -> None:
    wire.log.create_topic("rides", 2)
    producer = AIOKafkaProducer(bootstrap_servers=wire.bootstrap, **options)
    await producer.start()
    try:
        sent = [await producer.send_and_wait("rides", b"ride-%d" % i, key=b"k%d" % i,
                                             partition=i % 2, headers=[("n", b"%d" % i)])
                for i in range(10)]
    finally:
        await producer.stop()
    assert [(m.partition, m.offset) for m in sent] == [(i % 2, i // 2) for i in range(10)]
    assert [m.value for m in wire.log.fetch(LogPartition("rides", 1), 0)] == \
        [b"ride-%d" % i for i in range(1, 10, 2)]

    consumer = AIOKafkaConsumer(bootstrap_servers=wire.bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition("rides", 0), TopicPartition("rides", 1)])
        got = []
        with anyio.fail_after(10):
            while len(got) < 10:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got += records
    finally:
        await consumer.stop()
    assert sorted((r.key, r.value, list(r.headers)) for r in got) == \
        sorted((b"k%d" % i, b"ride-%d" % i, [("n", b"%d" % i)]) for i in range(10))


@pytest.mark.anyio
async def test_a_waiting_aiokafka_consumer_gets_a_log_producers_record(wire: Wire) -> None:
    wire.log.create_topic("rides", 1)
    consumer = AIOKafkaConsumer(bootstrap_servers=wire.bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=5000)
    await consumer.start()
    try:
        partition = TopicPartition("rides", 0)
        consumer.assign([partition])
        await consumer.seek_to_end(partition)
        assert await consumer.position(partition) == 0

        async def write_soon() -> None:
            await anyio.sleep(0.3)          # the consumer's fetch is waiting by then
            with streamkit.Producer(broker="log://", datadir=wire.datadir) as producer:
                producer.send("rides", value=b"late")

        async with anyio.create_task_group() as tg:
            tg.start_soon(write_soon)
            started = time.monotonic()
            with anyio.fail_after(10):
                record = await consumer.getone()
            waited = time.monotonic() - started
    finally:
        await consumer.stop()
    assert (record.offset, record.value) == (0, b"late")
    assert waited < 3          # woken by the append, not by fetch_max_wait_ms (5 s)
