"""A streamkit App on kafka:// (tansu, streamkit broker): an agent re-keys rides with
group_by, counts them in a table and forwards some to another topic; a second run
restores the table from its changelog topic on Kafka."""
from __future__ import annotations

import os
import threading
import uuid

import anyio
import pytest

import streamkit
from streamkit.worker import Worker

pytestmark = [pytest.mark.kafka, pytest.mark.anyio]


@pytest.fixture(autouse=True)
def datadir_in_tmp(tmp_path, monkeypatch):
    """The apps' data dirs (where a worker records the topics it creates) in tmp, not
    in the repository's stores/."""
    monkeypatch.setenv("STREAMKIT_DATADIR", str(tmp_path))


@pytest.fixture
def anyio_backend():
    return "asyncio"


class Ride(streamkit.Record, serializer="json"):
    vendorId: int
    total_amount: float = 0.0


def make_app(url: str, name: str):
    app = streamkit.App(name, broker=url, store="memory://", web_enabled=False,
                        commit_interval=0.2, topic_partitions=4, session_timeout=3.0)
    rides = app.topic(f"{name}-rides", value_type=Ride, partitions=4)
    high = app.topic(f"{name}-high")
    counts = app.Table("counts", default=int)

    @app.agent(rides)
    async def count(stream):
        async for ride in stream.group_by(Ride.vendorId, name="vendor"):
            counts[ride.vendorId] += 1
            if ride.total_amount >= 40:
                await streamkit.current_event().forward(high)

    return app, rides, counts


async def run_until_counted(app, counts, total, timeout=60.0) -> dict:
    """Run a worker until the table counts ``total`` rides; the table's contents then
    (the worker closes its stores when it stops)."""
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(timeout):
            while sum(v for _, v in counts.items()) != total:
                await anyio.sleep(0.05)
        seen = dict(counts.items())
        worker.stop()
    return seen


async def test_app_counts_on_kafka_and_restores_its_table(tansu):
    name = f"app-{uuid.uuid4().hex[:8]}"
    app, rides, counts = make_app(tansu, name)
    for i in range(200):
        await rides.send(key=str(i), value=Ride(vendorId=i % 3, total_amount=float(i % 50)))
    assert await run_until_counted(app, counts, 200) == {0: 67, 1: 67, 2: 66}
    broker = app.broker
    assert sum(broker.describe_topic(f"{name}-high").end_offsets) == 200 * 10 // 50
    assert f"{name}-counts-changelog" in broker.list_topics()
    assert name in broker.list_groups()

    # A new worker with an empty memory store: the table comes back from Kafka.
    app2, _rides, counts2 = make_app(tansu, name)
    assert await run_until_counted(app2, counts2, 200) == {0: 67, 1: 67, 2: 66}


async def test_dead_letters_and_timers_on_kafka(tansu):
    name = f"dlq-{uuid.uuid4().hex[:8]}"
    app = streamkit.App(name, broker=tansu, store="memory://", web_enabled=False,
                        commit_interval=0.2, topic_partitions=2, session_timeout=3.0,
                        broker_config={"consumer": {"partition.assignment.strategy": "range"}})
    rides = app.topic(f"{name}-rides", value_type=Ride, partitions=2)
    seen, ticks = [], []

    @app.agent(rides)
    async def read(stream):
        async for ride in stream:
            seen.append(ride.vendorId)

    @app.timer(0.2)
    async def tick():
        ticks.append(1)

    producer = streamkit.Producer(broker=tansu)
    producer.send(f"{name}-rides", value=b'{"vendorId": 1}', key=b"a")
    producer.send(f"{name}-rides", value=b'{"vendorId": "x"}', key=b"a")
    producer.send(f"{name}-rides", value=b'{"vendorId": 3}', key=b"a")
    producer.flush()
    producer.close()
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(60):
            while len(seen) < 2 or len(ticks) < 2 or not app.monitor.dead_letters:
                await anyio.sleep(0.05)
        worker.stop()
    assert seen == [1, 3]
    dlq = f"{name}-{name}-rides-dlq"
    broker = app.broker
    (partition,) = [p for p, end in enumerate(broker.describe_topic(dlq).end_offsets) if end]
    (record,) = broker.fetch(streamkit.TopicPartition(dlq, partition), 0, 10, timeout=2.0)
    assert record.value == b'{"vendorId": "x"}'
    assert dict(record.headers)["streamkit.source.topic"] == f"{name}-rides".encode()


async def test_workers_of_an_app_with_tables_get_copartitioned_assignments(tansu):
    # Tables keep partition N wherever partition N of any topic is (docs/tables.md).
    # Kafka's cooperative-sticky assignor splits three members over the source topic
    # and the group_by topic without that; a worker of an app with tables asks for it.
    name = f"app-{uuid.uuid4().hex[:8]}"
    apps = [make_app(tansu, name)[0] for _ in range(3)]
    workers = [Worker(app, install_signal_handlers=False) for app in apps]
    topics = {f"{name}-rides", f"{name}-vendor-repartition"}

    def held() -> list[set]:
        return [w.consumer.assignment() if w.consumer is not None else set()
                for w in workers]

    async with anyio.create_task_group() as tg:
        for worker in workers:
            tg.start_soon(worker.run_async)
        with anyio.fail_after(60):
            while not (all(held()) and sum(len(h) for h in held()) == 8
                       and {tp.topic for h in held() for tp in h} == topics):
                await anyio.sleep(0.1)
        assignments = held()
        for worker in workers:
            worker.stop()
    for assignment in assignments:
        numbers = [{tp.partition for tp in assignment if tp.topic == t} for t in topics]
        assert numbers[0] == numbers[1], assignments


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_a_stopped_worker_leaves_no_connection_open(tansu, kafka_broker):
    """The worker closes its app's broker connection when it stops: librdkafka's
    clients (their threads and sockets) go with it, so a process that runs workers
    one after another, as a test suite does, does not gather them. It opens again
    on the next use."""
    before = _open_descriptors()
    threads = threading.active_count()
    name = f"app-{uuid.uuid4().hex[:8]}"
    app, rides, counts = make_app(tansu, name)
    await rides.send(key="0", value=Ride(vendorId=0))
    assert await run_until_counted(app, counts, 1) == {0: 1}
    assert threading.active_count() <= threads
    if kafka_broker != "streamkit":
        # (streamkit broker serves in this process, and keeps the files of the topics
        # the app created open)
        assert _open_descriptors() <= before + 2
    await rides.send(key="1", value=Ride(vendorId=1))      # (opens it again)
    assert sum(app.broker.describe_topic(rides.get_topic_name()).end_offsets) == 2
