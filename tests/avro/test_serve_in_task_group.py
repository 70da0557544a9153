"""serve_registry inside a task group, as a worker runs it: started() gives the bound
port once it listens, cancelling the group closes the socket."""
from __future__ import annotations

import json
import socket
import urllib.request

import anyio
import pytest

from streamkit.avro import Schema
from streamkit.web.registry import serve_registry

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.headers["Content-Type"] == "application/vnd.schemaregistry.v1+json"
        return json.loads(resp.read())


async def test_serve_in_a_task_group_and_stop_on_cancel(registry) -> None:
    registry.register("rides-value", Schema.parse(
        {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}))
    async with anyio.create_task_group() as tg:
        port = await tg.start(serve_registry, registry, "127.0.0.1", 0)
        assert port > 0
        # the client is blocking; run it off the event loop that serves it
        subjects = await anyio.to_thread.run_sync(
            get, f"http://127.0.0.1:{port}/subjects")
        assert subjects == ["rides-value"]
        tg.cancel_scope.cancel()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


async def test_a_taken_port_is_an_error_not_an_exit(registry) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with anyio.create_task_group() as tg:
            with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
                await tg.start(serve_registry, registry, "127.0.0.1", port)
