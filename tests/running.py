"""Running an in-process worker in a test until something the test waits for holds."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio

from streamkit.types import TopicPartition
from streamkit.worker import Worker


async def run_until(app_or_worker: Any, condition: Callable[[], Any],
                    within: float = 5.0) -> Worker:
    """Run a worker of ``app_or_worker`` (an App, or a Worker already built) until
    ``condition()`` is true, then stop it; fail after ``within`` seconds."""
    worker = app_or_worker if isinstance(app_or_worker, Worker) else \
        Worker(app_or_worker, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(within):
            while not condition():
                await anyio.sleep(0.01)
        worker.stop()
    return worker


@asynccontextmanager
async def running(app: Any) -> AsyncIterator[Worker]:
    """A worker of ``app`` running (ready) for the ``async with`` block."""
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(10):
            while not worker.ready:
                await anyio.sleep(0.01)
        yield worker
        worker.stop()


async def committed(worker: Worker, tp: TopicPartition, events: int) -> None:
    """Wait until ``worker`` has committed the first ``events`` records of ``tp``."""
    with anyio.fail_after(10):
        while worker.committer.committed.get(tp, 0) < events:
            await anyio.sleep(0.005)
