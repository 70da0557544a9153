"""Table updates from a take(within=) list (a regression test from a code review)."""
from __future__ import annotations

import itertools

import anyio
import pytest

import streamkit
from streamkit.partitioner import partition_for_key
from streamkit.worker import Worker

pytestmark = pytest.mark.anyio
_ids = itertools.count()


async def test_counting_in_take_lists_counts_each_event_once():
    name = f"reviewtake{next(_ids)}"
    app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                        web_enabled=False, commit_interval=0.05, topic_partitions=4)
    topic = app.topic("events", partitions=4)
    counts = app.Table("counts", default=int)
    # a key that does not hash to partition 0, where the events are
    key = next(k for k in (f"k{i}" for i in range(100))
               if partition_for_key(counts.key_serde.dumps(k), 4) != 0)
    lists = []

    @app.agent(topic)
    async def count(stream):
        async for values in stream.take(2, within=0.05):
            for _ in values:
                counts[key] += 1
            lists.append(len(values))

    for i in range(3):
        await topic.send(value=i, partition=0)
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(5):
            while sum(lists) < 3:           # [e0, e1] when full, [e2] on the deadline
                await anyio.sleep(0.01)
            await anyio.sleep(0.1)
            seen = counts[key]
            total = sum(v for k, v in counts.items() if k == key)
        worker.stop()
    assert lists == [2, 1]
    assert (seen, total) == (3, 3)
