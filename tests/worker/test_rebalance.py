"""What a worker does with the partition it is processing when it is revoked (a regression
test from a code review)."""
from __future__ import annotations

import itertools

import anyio
import pytest

import streamkit
from streamkit.worker import Worker
from tests.running import running

pytestmark = pytest.mark.anyio
_ids = itertools.count()


def committed(app: streamkit.App, topic: str, partition: int) -> int | None:
    for o in app.broker.group_offsets(app.conf.id):
        if o.topic == topic and o.partition == partition:
            return o.committed
    return None


async def test_revoked_partition_is_not_written_by_the_old_owner():
    name = f"reviewrebalance{next(_ids)}"
    release = anyio.Event()
    blocked = anyio.Event()

    def build(block: bool):
        app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                            web_enabled=False, commit_interval=0.05, topic_partitions=2)
        topic = app.topic("t", partitions=2)
        counts = app.Table("counts", default=int)
        seen = []

        @app.agent(topic)
        async def count(stream):
            async for value in stream:
                if block and value == 2 and not release.is_set():
                    blocked.set()
                    await release.wait()
                counts["k"] += 1
                seen.append(value)
        return app, topic, counts, seen

    app_a, topic, counts_a, seen_a = build(block=True)
    for i in range(5):
        await topic.send(key="k", value=i, partition=1)
    worker_a = Worker(app_a, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker_a.run_async)
        with anyio.fail_after(10):
            await blocked.wait()            # A has counted 0 and 1, holds 2
            app_b, _, counts_b, seen_b = build(block=False)
            worker_b = Worker(app_b, install_signal_handlers=False)
            tg.start_soon(worker_b.run_async)
            # B (the later member) gets partition 1 and finishes it: k == 5
            while committed(app_b, "t", 1) != 5:
                await anyio.sleep(0.01)
            assert seen_b == [2, 3, 4]
            release.set()                   # A's agent finishes the event in hand
            while len(seen_a) < 3:
                await anyio.sleep(0.01)
            await anyio.sleep(0.3)          # A's commit loop runs
            assert seen_a == [0, 1, 2]      # and leaves the rest of the revoked batch
        worker_a.stop()
        await anyio.sleep(0.2)
        worker_b.stop()
    # a new worker restores the table from the changelog
    app_c, _, counts_c, _ = build(block=False)
    async with running(app_c):
        await anyio.sleep(0.1)
        restored = counts_c.get("k")
    assert restored == 5


async def test_partition_assigned_again_keeps_the_committed_offset():
    name = f"reviewrebalance{next(_ids)}"
    release = anyio.Event()
    blocked = anyio.Event()

    def build(block: bool):
        app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                            web_enabled=False, commit_interval=0.05, topic_partitions=2)
        topic = app.topic("t", partitions=2)
        seen = []

        @app.agent(topic)
        async def consume(stream):
            async for value in stream:
                if block and value == 2 and not release.is_set():
                    blocked.set()
                    await release.wait()
                seen.append(value)
        return app, topic, seen

    app_a, topic, seen_a = build(block=True)
    for i in range(5):
        await topic.send(key="k", value=i, partition=1)
    worker_a = Worker(app_a, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker_a.run_async)
        with anyio.fail_after(10):
            await blocked.wait()            # A holds offset 2 of partition 1
            app_b, _, seen_b = build(block=False)
            worker_b = Worker(app_b, install_signal_handlers=False)
            async with anyio.create_task_group() as tg_b:
                tg_b.start_soon(worker_b.run_async)
                for i in range(5, 10):
                    await topic.send(key="k", value=i, partition=1)
                while committed(app_b, "t", 1) != 10:   # B took partition 1, did it all
                    await anyio.sleep(0.01)
                worker_b.stop()             # B leaves: partition 1 goes back to A
            while not any(tp.partition == 1 for tp in worker_a.consumer.assignment()):
                await anyio.sleep(0.01)
            release.set()                   # A's agent finishes the event in hand
            while len(seen_a) < 3:
                await anyio.sleep(0.01)
            await anyio.sleep(0.3)          # A's commit loop runs
        worker_a.stop()
    assert seen_b == list(range(2, 10))
    assert seen_a == [0, 1, 2]              # the rest of the revoked batch was left
    assert committed(app_a, "t", 1) == 10
