"""Serving an ASGI app with uvicorn inside an anyio task group.

Used by the worker's web server and the Schema Registry: uvicorn runs in the host's
event loop, leaves SIGINT/SIGTERM to the host, and stops cleanly when its task is
cancelled.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator
from typing import Any

import anyio
import uvicorn


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve_asgi(asgi_app: Any, host: str, port: int, *,
                     on_started: Callable[[int], Any], **options: Any) -> None:
    """Serve ``asgi_app`` on ``host:port`` until cancelled.

    ``on_started(bound_port)`` is called once it listens (``port=0`` picks a free one).
    A port that cannot be bound raises ``OSError``; any other failure of the server is
    raised as it is.
    """
    config = uvicorn.Config(asgi_app, host=host, port=port, log_level="warning",
                            access_log=False, lifespan="off", **options)
    server = EmbeddedServer(config)
    failure: list[BaseException] = []
    finished = anyio.Event()

    async def run() -> None:
        # shielded: once cancelled, uvicorn still closes its sockets itself
        with anyio.CancelScope(shield=True):
            try:
                await server.serve()
            except SystemExit:        # uvicorn exits the process when it cannot bind
                failure.append(OSError(f"cannot listen on {host}:{port}"))
            except Exception as exc:  # noqa: BLE001 - raised to the caller below
                failure.append(exc)
            finally:
                finished.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        try:
            # uvicorn sets a flag, with no event to wait on
            while not server.started and not finished.is_set():  # noqa: ASYNC110
                await anyio.sleep(0.01)
            if server.started:
                on_started(bound_port(server, port))
            await finished.wait()
        finally:
            server.should_exit = True
    # raised here, outside the task group, so callers get the error itself
    if failure:
        raise failure[0]
    if not server.started:
        raise OSError(f"server on {host}:{port} stopped before it started")


def bound_port(server: uvicorn.Server, default: int) -> int:
    """The port the server listens on (the one picked for port 0)."""
    for srv in server.servers:
        for sock in srv.sockets:
            return int(sock.getsockname()[1])
    return default
