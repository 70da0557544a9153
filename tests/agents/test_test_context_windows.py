"""agent.test_context() isolation for windowed tables (a regression test from a code
review)."""
from __future__ import annotations

import pytest

import streamkit

pytestmark = pytest.mark.anyio


async def test_each_test_context_starts_with_fresh_windows():
    app = streamkit.App("reviewtc", broker="memory://reviewtc", store="memory://",
                        web_enabled=False)
    per_minute = app.Table("per_minute", default=int).tumbling(60)

    @app.agent(app.topic("clicks"))
    async def count(stream):
        async for user in stream:
            per_minute[user] += 1

    # one test: events of a late hour
    async with count.test_context() as ctx:
        await ctx.put("alice", timestamp=7200.0)
        assert per_minute.windows("alice") == [((7200.0, 7260.0), 1)]
    # another test with the same app: events of an earlier hour
    async with count.test_context() as ctx:
        await ctx.put("bob", timestamp=60.0)
        assert per_minute.windows("bob") == [((60.0, 120.0), 1)]
    assert per_minute.late_events == 0
