"""Running a real worker of an App in the test's own process until something holds."""
from __future__ import annotations

from collections.abc import Callable

import anyio

import streamkit
from streamkit.worker import Worker


async def run_worker(app: streamkit.App, condition: Callable[[Worker], bool],
                     timeout: float = 20.0) -> Worker:
    """Run a worker of ``app`` until ``condition(worker)``, then stop it gracefully."""
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(timeout):
            while not condition(worker):
                await anyio.sleep(0.01)
        worker.stop()
    return worker


def run_worker_blocking(app: streamkit.App, condition: Callable[[Worker], bool],
                        timeout: float = 20.0) -> Worker:
    """``run_worker`` from a test that is not async."""
    return anyio.run(run_worker, app, condition, timeout)
