"""Review: sliding windows continued by a restarted worker."""
from __future__ import annotations

import itertools

import anyio
import pytest

import streamkit
from streamkit.worker import Worker

pytestmark = pytest.mark.anyio
_ids = itertools.count()


def build(name: str):
    app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                        web_enabled=False, commit_interval=0.02, topic_partitions=1)
    source = app.topic("src", partitions=1)
    windows = app.Table("w", default=int).sliding(10)
    seen: list[float] = []

    @app.agent(source)
    async def count(stream):
        async for value in stream:
            windows["k"] += 1
            seen.append(value)
    return app, source, windows, seen


async def run_worker(name: str, events: int):
    """Run a worker until it processed ``events`` events; the key's windows then."""
    app, _, windows, seen = build(name)
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(5):
            while len(seen) < events:
                await anyio.sleep(0.01)
            await anyio.sleep(0.1)
        result = windows.windows("k")
        worker.stop()
    return result


async def test_sliding_windows_are_the_same_with_a_restart_in_between():
    times = [0.0, 3.0, 12.0, 14.0]
    # one worker, all events
    straight = f"reviewslide{next(_ids)}"
    _, source, _, _ = build(straight)
    for t in times:
        await source.send(value=t, timestamp=t, partition=0)
    expected = await run_worker(straight, len(times))
    # the same events, with a graceful stop and restart after the first two
    restarted = f"reviewslide{next(_ids)}"
    _, source, _, _ = build(restarted)
    for t in times[:2]:
        await source.send(value=t, timestamp=t, partition=0)
    await run_worker(restarted, 2)
    for t in times[2:]:
        await source.send(value=t, timestamp=t, partition=0)
    got = await run_worker(restarted, 2)
    assert dict(expected)[(4.0, 14.0)] == 2      # the records at 12 and 14
    assert got == expected
