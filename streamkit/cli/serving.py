"""Running a server command (``streamkit broker``, ``streamkit registry``) until
Ctrl-C or SIGTERM."""
from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from anyio.abc import TaskGroup


def serve_until_stopped(start: Callable[[TaskGroup], Awaitable[None]],
                        close: Callable[[], None]) -> None:
    """Run what ``start`` starts in a task group until SIGINT or SIGTERM (exit status
    0), then ``close()``. A server that cannot listen (the port is taken) is one error
    line and exit status 1."""
    import anyio   # (not at import: the command line starts without it)

    async def run() -> None:
        async with anyio.create_task_group() as tg:
            await start(tg)
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    tg.cancel_scope.cancel()    # stops the server; exit status 0
                    break

    try:
        anyio.run(run)
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        close()
