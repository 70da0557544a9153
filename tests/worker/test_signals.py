"""A worker stops gracefully on SIGTERM/SIGINT from the moment it says it is ready."""
from __future__ import annotations

import logging
import signal

import anyio
import pytest

import streamkit
from streamkit.worker import Worker

pytestmark = pytest.mark.anyio


class _HandlersAtReady(logging.Handler):
    """Notes, when the worker logs "ready", what SIGTERM and SIGINT would do."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[object] = []

    def emit(self, record: logging.LogRecord) -> None:
        if " ready:" in record.getMessage():
            self.seen = [signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)]


async def test_signal_handlers_are_in_place_when_the_worker_logs_ready():
    # a supervisor (or a test) that signals as soon as it reads "ready" must get a
    # graceful stop, not the default action that kills the process
    app = streamkit.App("signalsready", broker="memory://signalsready", store="memory://",
                        web_enabled=False)
    topic = app.topic("t", partitions=1)

    @app.agent(topic)
    async def consume(stream):
        async for _ in stream:
            pass

    handler = _HandlersAtReady()
    logger = logging.getLogger("streamkit.worker")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    worker = Worker(app)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run_async)
            with anyio.fail_after(10):
                while not worker.ready:
                    await anyio.sleep(0.01)
            worker.stop()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert len(handler.seen) == 2
    assert signal.SIG_DFL not in handler.seen
    assert signal.default_int_handler not in handler.seen
