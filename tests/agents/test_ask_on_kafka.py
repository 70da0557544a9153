"""``agent.ask`` / ``join`` on kafka:// (tansu, streamkit broker): the reply topic and
its reading work on Kafka too."""
from __future__ import annotations

import uuid

import anyio
import pytest

import streamkit
from streamkit.worker import Worker

pytestmark = [pytest.mark.kafka, pytest.mark.anyio]


async def test_ask_and_join_on_kafka(tansu, tmp_path):
    name = f"ask-{uuid.uuid4().hex[:8]}"
    app = streamkit.App(name, broker=tansu, datadir=str(tmp_path), store="memory://",
                        web_enabled=False, commit_interval=0.2, session_timeout=3.0)

    @app.agent(app.topic(f"{name}-numbers", partitions=2))
    async def double(stream):
        async for value in stream:
            yield value * 2

    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        try:
            with anyio.fail_after(60):
                assert await double.ask(21) == 42
                assert await double.join([1, 2, 3]) == [2, 4, 6]
        finally:
            worker.stop()
