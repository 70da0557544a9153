"""The fetcher's streams: a stream subscribed to several topics (the stream of an agent
over a stream-stream join reads both of its topics) is one stream, counted once."""
from __future__ import annotations

from typing import Any

import anyio
import pytest

import streamkit
from streamkit.types import TopicPartition
from tests.running import running

pytestmark = pytest.mark.anyio


async def test_an_agent_over_a_join_counts_each_record_once():
    app = streamkit.App("fetchjoin", broker="memory://fetchjoin", store="memory://",
                        web_enabled=False, commit_interval=0.05)
    left = app.topic("left", key_type=str, partitions=1)
    right = app.topic("right", key_type=str, partitions=1)
    pairs: list[Any] = []

    @app.agent(left.join(right, within=5))
    async def joined(stream):
        async for pair in stream:
            pairs.append(pair)

    async with running(app) as worker:
        with anyio.fail_after(5):
            for ts, value in enumerate(("A", "B", "C"), 1):
                await left.send(key="k", value=value, timestamp=ts)
            for ts, value in enumerate(("a", "b"), 1):
                await right.send(key="k", value=value, timestamp=ts)
            done = {TopicPartition("left", 0): 3, TopicPartition("right", 0): 2}
            while not all(stream.positions().get(tp) == end for stream in joined.streams
                          for tp, end in done.items()):
                await anyio.sleep(0.01)
    assert len(pairs) == 6                         # each of A, B, C with each of a, b
    assert joined.events_total == 5
    assert worker.events_processed() == 5
    assert len(list(app.fetcher.streams())) == 1
