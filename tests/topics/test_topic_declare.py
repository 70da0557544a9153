"""A declared topic's partitions when the first send creates it (a regression test from a
code review)."""
from __future__ import annotations

import pytest

import streamkit

pytestmark = pytest.mark.anyio


async def test_first_send_creates_the_topic_with_its_declared_partitions():
    app = streamkit.App("reviewdeclare", broker="memory://reviewdeclare",
                        store="memory://", web_enabled=False, topic_partitions=4)
    topic = app.topic("orders", partitions=1)
    await topic.send(key="a", value=1)
    assert app.broker.partition_count("orders") == 1


async def test_declare_and_maybe_declare_may_be_awaited_as_in_faust():
    app = streamkit.App("awaitdeclare", broker="memory://awaitdeclare",
                        store="memory://", web_enabled=False, topic_partitions=4)
    assert await app.topic("a", partitions=2).declare() is None
    assert app.broker.partition_count("a") == 2
    assert await app.topic("b", "c", partitions=3).maybe_declare() is None
    assert [app.broker.partition_count(n) for n in ("b", "c")] == [3, 3]
    app.topic("d", partitions=1).declare()           # a plain call does the work too
    app.topic("e", partitions=1).maybe_declare()
    assert [app.broker.partition_count(n) for n in ("d", "e")] == [1, 1]
    channel = app.channel()
    await channel.declare()
    await channel.maybe_declare()
