"""The app of the exactly_once tests: an agent counting events by parity into a table
and forwarding each to an output topic, so that a commit holds all three: outputs,
changelog records, input offsets."""
from __future__ import annotations

from typing import Any


def add_relay(app: Any, name: str) -> tuple[Any, Any]:
    """Topics ``<name>-in`` and ``<name>-out``, the table ``counts`` and the agent, on
    ``app``; returns (source topic, table)."""
    source = app.topic(f"{name}-in", partitions=2)
    out = app.topic(f"{name}-out", partitions=2)
    counts = app.Table("counts", default=int, partitions=2)

    @app.agent(source)
    async def relay(stream):
        async for value in stream:
            counts[value % 2] += 1
            out.send_soon(value=value)

    return source, counts
