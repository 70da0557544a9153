"""processing_guarantee="exactly_once" on the embedded log (issue 19): an agent's
sends, its table's changelog records and its input offsets commit in one transaction
of the log's own coordinator; what a failed commit wrote is never seen by
read_committed readers, and the table forgets it."""
from __future__ import annotations

import json
import uuid

import anyio
import pytest

import streamkit
from streamkit.types import OutgoingRecord, TopicPartition
from streamkit.worker import Worker

from tests.commit.relay import add_relay

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def make_app(url: str, name: str, datadir: str, commit_interval: float = 0.2):
    app = streamkit.App(name, broker=url, store="rocksdb://", datadir=datadir,
                        web_enabled=False, commit_interval=commit_interval,
                        topic_partitions=2,
                        processing_guarantee="exactly_once")
    source, counts = add_relay(app, name)
    return app, source, counts


def read_all(app, topic: str, isolation: str = "read_committed") -> list:
    broker = app.broker
    out = []
    for p in range(broker.partition_count(topic) or 0):
        offset = broker.offsets(TopicPartition(topic, p))[0]
        while batch := broker.fetch(TopicPartition(topic, p), offset, 1000,
                                    isolation_level=isolation):
            out.extend(batch)
            offset = batch[-1].offset + 1
    return out


async def run_until_committed(app, name: str, count: int) -> Worker:
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(60):
            while sum(o.committed or 0 for o in app.broker.group_offsets(name)
                      if o.topic == f"{name}-in") < count:
                await anyio.sleep(0.05)
        worker.stop()
    return worker


@pytest.mark.parametrize("scheme", ["log", "memory"])
async def test_sends_changelog_and_offsets_commit_together(tmp_path, scheme):
    name = f"eos-{uuid.uuid4().hex[:8]}"
    url = f"log://{tmp_path}/log" if scheme == "log" else f"memory://{name}"
    app, source, counts = make_app(url, name, str(tmp_path / "data"))
    for i in range(50):
        await source.send(key=str(i), value=i)
    worker = await run_until_committed(app, name, 50)
    assert worker.transaction is None  # closed with the worker
    outputs = sorted(json.loads(m.value) for m in read_all(app, f"{name}-out"))
    assert outputs == list(range(50))
    latest = {}
    for m in read_all(app, f"{name}-counts-changelog"):
        latest[(m.partition, json.loads(m.key))] = json.loads(m.value)
    assert {k: sum(v for (_, key), v in latest.items() if key == k) for k in (0, 1)} == {
        0: 25, 1: 25}


async def test_a_fenced_worker_commits_nothing_and_a_restart_redoes_it_once(tmp_path):
    """A worker whose transactional id another producer took (as a newer worker with
    the same id would) cannot commit: nothing it did is visible to read_committed
    readers, and a restarted worker processes the events again, once."""
    name = f"eos-{uuid.uuid4().hex[:8]}"
    url = f"log://{tmp_path}/log"
    datadir = str(tmp_path / "data")
    app, source, counts = make_app(url, name, datadir, commit_interval=3600)
    for i in range(10):
        await source.send(key=str(i), value=i)
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(30):
            while worker.transaction is None:
                await anyio.sleep(0.01)
            app.broker.transactional_producer(worker.transaction.transactional_id)
            while sum(app.monitor.events_in.values()) < 10:
                await anyio.sleep(0.01)
        worker.stop()                   # its final commit is refused (logged)
    assert app.broker.group_offsets(name) == []
    assert read_all(app, f"{name}-out") == []
    assert read_all(app, f"{name}-counts-changelog") == []
    again, source, counts = make_app(url, name, datadir)
    await run_until_committed(again, name, 10)
    outputs = sorted(json.loads(m.value) for m in read_all(again, f"{name}-out"))
    assert outputs == list(range(10))


async def test_a_commit_left_prepared_is_finished_before_the_restart_reads_offsets(
        tmp_path):
    """A worker killed inside a commit (its state ``prepare_commit``: outputs and
    offsets decided, not all written) leaves the commit to its next life, which takes
    the same transactional id. That life must finish it before it reads the group's
    offsets: reading first, it would start before the prepared offsets and process
    those events again, on top of the outputs the commit makes visible."""
    name = f"eos-{uuid.uuid4().hex[:8]}"
    url = f"log://{tmp_path}/log"
    datadir = str(tmp_path / "data")
    app, source, _counts = make_app(url, name, datadir)
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:        # a life with no events: its id
        tg.start_soon(worker.run_async)
        with anyio.fail_after(30):
            while worker.transaction is None:
                await anyio.sleep(0.01)
        transactional_id = worker.transaction.transactional_id
        worker.stop()
    for i in range(10):
        await source.send(key=str(i), value=i, partition=i % 2)
    # the life that died: events 0-5 (offsets 0-2 of each partition) sent and offered
    # with their offsets; killed once the state said prepare_commit
    broker = app.broker
    tx = broker.transactional_producer(transactional_id)
    tx.begin()
    tx.send(f"{name}-out", [OutgoingRecord(None, json.dumps(i).encode(), partition=i % 2)
                            for i in range(6)])
    tx.add_offsets(name, {TopicPartition(f"{name}-in", 0): 3,
                          TopicPartition(f"{name}-in", 1): 3})
    coordinator = broker.transactions()
    with coordinator._store.locked(transactional_id):
        state = coordinator._store.read(transactional_id)
        state["state"] = "prepare_commit"
        coordinator._store.write(state)
    again, _source, _counts = make_app(url, name, datadir)
    await run_until_committed(again, name, 10)
    outputs = sorted(json.loads(m.value) for m in read_all(again, f"{name}-out"))
    assert outputs == list(range(10))                 # each once


async def test_a_commit_waits_for_an_agent_awaiting_inside_an_event(tmp_path):
    """An agent that awaits inside an event (a call out, a sleep) has sent some of
    what the event gives and not the rest. A commit then would make those sends
    visible without the event's offset, and a restart would send them again: the
    commit waits until the agent asks for its next event."""
    name = f"eos-{uuid.uuid4().hex[:8]}"
    app = streamkit.App(name, broker=f"log://{tmp_path}/log", store="rocksdb://",
                        datadir=str(tmp_path / "data"), web_enabled=False,
                        commit_interval=0.5, processing_guarantee="exactly_once")
    source = app.topic(f"{name}-in", partitions=1)
    out = app.topic(f"{name}-out", partitions=1)
    inside, go_on = anyio.Event(), anyio.Event()

    @app.agent(source)
    async def relay(stream):
        async for value in stream:
            out.send_soon(value=f"{value} first")
            inside.set()
            await go_on.wait()
            out.send_soon(value=f"{value} then")

    await source.send(value=1)
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(30):
            await inside.wait()
            await anyio.sleep(1.0)       # two commit intervals (it waits up to 2 s)
            assert read_all(app, f"{name}-out") == []
            assert not [o for o in app.broker.group_offsets(name) if o.committed]
            go_on.set()
            while sum(o.committed or 0 for o in app.broker.group_offsets(name)) < 1:
                await anyio.sleep(0.02)
        worker.stop()
    assert [json.loads(m.value) for m in read_all(app, f"{name}-out")] == [
        "1 first", "1 then"]
