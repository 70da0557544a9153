"""A Faust app for tests/wire/test_faust.py, run by ``faust -A faust_counter worker``
in a Python that has faust-streaming: a counting agent over topic "words" keeps each
key's count in a Table (changelog "counter-word_counts-changelog") and sends the new
count to topic "counts". The broker's address comes from $BROKER_PORT."""
from __future__ import annotations

import os
from typing import Any

import faust

app = faust.App("counter", broker=f"kafka://127.0.0.1:{os.environ['BROKER_PORT']}",
                store="memory://", topic_partitions=2, web_enabled=False,
                # commit the agent's offsets often, so the test sees them soon
                broker_commit_interval=0.5)
words = app.topic("words", key_type=str, value_type=str)
counts_topic = app.topic("counts", key_type=str, value_type=int)
word_counts = app.Table("word_counts", default=int, partitions=2)


@app.agent(words)
async def count(stream: Any) -> None:
    """Count each key, and send the key's new count on."""
    async for key, _value in stream.items():
        word_counts[key] += 1
        await counts_topic.send(key=key, value=word_counts[key])
