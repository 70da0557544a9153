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
