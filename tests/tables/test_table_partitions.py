"""A table updated from a topic with more partitions than the table (a regression test from
a code review)."""
from __future__ import annotations

import anyio
import pytest

import streamkit
from streamkit.errors import ImproperlyConfigured
from streamkit.worker import Worker

pytestmark = pytest.mark.anyio


async def test_table_on_a_topic_with_more_partitions_than_the_default():
    app = streamkit.App("reviewtp8", broker="memory://reviewtp8", store="memory://",
                        web_enabled=False, commit_interval=0.05, topic_partitions=4)
    rides = app.topic("rides", partitions=8)
    counts = app.Table("counts", default=int)
    seen = []

    @app.agent(rides)
    async def count(stream):
        async for vendor in stream:
            counts[vendor] += 1
            seen.append(vendor)

    rides.declare()
    for p in range(8):
        await rides.send(value=p, partition=p)
    worker = Worker(app, install_signal_handlers=False)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run_async)
            with anyio.fail_after(5):
                while len(seen) < 8:
                    await anyio.sleep(0.01)
                await anyio.sleep(0.2)      # some commits
                assert sorted(counts.items()) == [(p, 1) for p in range(8)]
            worker.stop()
    except ImproperlyConfigured:
        pass   # refusing to start with a clear message would be fine too
