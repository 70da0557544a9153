"""Helpers for web tests: a real worker run in-process on its own anyio task group."""
from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest

import streamkit
from streamkit.cli.services import worker_services
from streamkit.worker import Worker

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")


def new_app(name: str, tmp_path: Any, **settings: Any) -> streamkit.App:
    """An App on its own in-memory broker (``memory://<unique>``) and memory stores."""
    options: dict[str, Any] = dict(broker=f"memory://{name}-{uuid.uuid4().hex[:8]}",
                                   store="memory://", datadir=str(tmp_path),
                                   commit_interval=0.05, web_port=0, topic_partitions=4)
    options.update(settings)
    return streamkit.App(name, **options)


@contextlib.asynccontextmanager
async def running_worker(app: streamkit.App, **worker_options: Any
                         ) -> AsyncIterator[httpx.AsyncClient]:
    """Run a worker of ``app`` until the block ends; yield an HTTP client on its web
    server (the port the server really bound)."""
    worker = Worker(app, services=worker_services(app), install_signal_handlers=False,
                    **worker_options)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(10):
            while not (worker.ready and app.conf.web_port):
                await anyio.sleep(0.01)
        base = f"http://{app.conf.web_host}:{app.conf.web_port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=5) as client:
                yield client
        finally:
            worker.stop()


async def eventually(check: Callable[[], Any], timeout: float = 10.0,
                     what: str = "condition") -> Any:
    """Await until ``check()`` (sync or async) gives something true."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if hasattr(result, "__await__"):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await anyio.sleep(0.05)
