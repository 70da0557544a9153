"""Two agents on one topic across a graceful stop and restart (a regression test from a
code review)."""
from __future__ import annotations

import itertools

import anyio
import pytest

import streamkit
from streamkit.worker import Worker

pytestmark = pytest.mark.anyio
_ids = itertools.count()


async def test_graceful_restart_with_two_agents_on_one_topic_is_exactly_once():
    name = f"reviewtwo{next(_ids)}"
    fast_seen: list[int] = []
    slow_seen: list[int] = []

    def build():
        app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                            web_enabled=False, commit_interval=0.05)
        topic = app.topic("t", partitions=1)

        @app.agent(topic)
        async def fast(stream):
            async for value in stream:
                fast_seen.append(value)

        @app.agent(topic)
        async def slow(stream):
            async for value in stream:
                await anyio.sleep(0.05)
                slow_seen.append(value)
        return app, topic

    app, topic = build()
    for i in range(20):
        await topic.send(value=i, partition=0)
    for _ in range(2):                      # run, stop gracefully, run again
        app, topic = build()
        worker = Worker(app, install_signal_handlers=False)
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run_async)
            with anyio.fail_after(5):
                while len(set(fast_seen)) < 20:
                    await anyio.sleep(0.01)
                await anyio.sleep(0.1)
            worker.stop()
    assert sorted(fast_seen) == list(range(20))
