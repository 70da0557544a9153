"""Session and sliding windows continued by a restarted worker make the same windows as one
worker that never stopped (a regression test from a code review)."""
from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import streamkit
from streamkit.worker import Worker

pytestmark = pytest.mark.anyio
_ids = itertools.count()

SESSION: Callable[[Any], Any] = lambda table: table.session(3)  # noqa: E731
SLIDING: Callable[[Any], Any] = lambda table: table.sliding(10)  # noqa: E731


def build(name: str, windowing: Callable[[Any], Any]):
    app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                        web_enabled=False, commit_interval=0.02, topic_partitions=1)
    source = app.topic("src", partitions=1)
    windows = windowing(app.Table("w", default=int))
    seen: list[float] = []

    @app.agent(source)
    async def count(stream):
        async for value in stream:
            windows["k"] += 1
            seen.append(value)
    return app, source, windows, seen


async def run_worker(name: str, windowing: Callable[[Any], Any], events: int):
    """Run a worker until it processed ``events`` events; the key's windows then."""
    app, _, windows, seen = build(name, windowing)
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


async def straight_and_restarted(windowing: Callable[[Any], Any], times: list[float]):
    """The windows of one worker given every event, and of a worker stopped gracefully
    after the first two events and restarted for the rest."""
    async def send(name: str, some: list[float]) -> None:
        _, source, _, _ = build(name, windowing)
        for t in some:
            await source.send(value=t, timestamp=t, partition=0)

    straight = f"reviewrestart{next(_ids)}"
    await send(straight, times)
    expected = await run_worker(straight, windowing, len(times))
    restarted = f"reviewrestart{next(_ids)}"
    await send(restarted, times[:2])
    await run_worker(restarted, windowing, 2)
    await send(restarted, times[2:])
    got = await run_worker(restarted, windowing, len(times) - 2)
    return expected, got


async def test_a_late_record_stays_late_after_a_restart():
    # 2.0 is late: stream time 10 > 2 + gap 3
    expected, got = await straight_and_restarted(SESSION, [0.0, 10.0, 2.0, 20.0])
    assert expected == [((0.0, 0.0), 1), ((10.0, 10.0), 1), ((20.0, 20.0), 1)]
    assert got == expected


async def test_sliding_windows_are_the_same_with_a_restart_in_between():
    expected, got = await straight_and_restarted(SLIDING, [0.0, 3.0, 12.0, 14.0])
    assert dict(expected)[(4.0, 14.0)] == 2      # the records at 12 and 14
    assert got == expected
