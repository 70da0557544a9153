"""Request-reply with agents on a real log on disk: ``ask``, ``ask_nowait``, ``cast``,
``map``, ``kvmap``, ``join``, ``kvjoin``; asked from the worker's process and from a
second process."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

import streamkit
from streamkit.agents.replies import CORRELATION_ID, REPLY_TO
from streamkit.internal_topics import INTERNAL, TopicRecord
from streamkit.worker import Worker

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]


class Quote(streamkit.Record, serializer="json"):
    symbol: str
    price: float


def build(datadir: Path):
    app = streamkit.App("askapp", broker="log://", datadir=str(datadir),
                        store="memory://", web_enabled=False, commit_interval=0.05)
    casts: list[int] = []

    @app.agent(app.topic("numbers", partitions=2))
    async def double(stream):
        async for key, value in stream.items():
            if key == "quiet":
                casts.append(value)
                continue
            yield value * 2

    @app.agent(app.topic("symbols", partitions=1))
    async def quote(stream):
        async for symbol in stream:
            yield Quote(symbol, 1.5)
    return app, double, quote, casts


async def with_worker(app, body) -> None:
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        try:
            with anyio.fail_after(10):
                await body()
        finally:
            worker.stop()


async def test_ask_map_join_and_cast_from_the_workers_process(tmp_path):
    app, double, quote, casts = build(tmp_path)

    async def body() -> None:
        assert await double.ask(21) == 42
        assert await double.ask(value=5, key="k") == 10
        promise = await double.ask_nowait(100)
        assert await promise == 200
        assert await quote.ask("ACME") == Quote("ACME", 1.5)   # a Record comes back
        assert sorted([r async for r in double.map([1, 2, 3])]) == [2, 4, 6]
        assert sorted([r async for r in double.kvmap([("a", 1), ("b", 2)])]) == [2, 4]
        # join keeps the order of the values, whatever order the replies come in
        # (keys spread them over both partitions)
        assert await double.kvjoin([(str(i), i) for i in range(10)]) == \
            [i * 2 for i in range(10)]
        assert await double.join([7, 8]) == [14, 16]
        assert await double.cast(9, key="quiet") is None
        while casts != [9]:
            await anyio.sleep(0.01)

    await with_worker(app, body)
    # the app's reply topic is one of its topics (reset deletes it)
    reply_topic = app.replies.topic
    assert reply_topic.startswith("askapp-") and reply_topic.endswith("-reply")
    assert reply_topic in app.broker.list_topics()
    recorded = TopicRecord(app.datadir).read()[INTERNAL]
    assert reply_topic in recorded


async def test_a_shared_reply_topic_serves_two_askers_each_their_own_replies(tmp_path):
    app, double, _, _ = build(tmp_path)
    other, other_double, _, _ = build(tmp_path)     # a second App instance, no worker

    async def body() -> None:
        results = {}

        async def ask(name, agent, value):
            results[name] = await agent.ask(value, reply_to="shared-replies")
        async with anyio.create_task_group() as tg:
            tg.start_soon(ask, "first", double, 1)
            tg.start_soon(ask, "second", other_double, 2)
        assert results == {"first": 2, "second": 4}

    await with_worker(app, body)
    assert "shared-replies" not in TopicRecord(app.datadir).read()[INTERNAL]


async def test_a_request_carries_fausts_reply_headers(tmp_path):
    app, double, _, _ = build(tmp_path)

    async def body() -> None:
        await double.ask(1, key="x")

    await with_worker(app, body)
    requests = [m for p in range(2) for m in app.broker.fetch(
        streamkit.TopicPartition("numbers", p), 0, 10)]
    (request,) = requests
    headers = dict(request.headers)
    assert headers[REPLY_TO] == app.replies.topic.encode()
    (reply,) = app.broker.fetch(streamkit.TopicPartition(app.replies.topic, 0), 0, 10)
    assert dict(reply.headers)[CORRELATION_ID] == headers[CORRELATION_ID]


async def test_an_ask_cancelled_by_a_timeout_raises_and_leaves_nothing_waiting(tmp_path):
    app, double, _, _ = build(tmp_path)   # no worker: nobody answers
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.2):
            await double.ask(1)
    assert not app.replies._slots


ASKER = textwrap.dedent("""
    import sys
    import anyio
    import streamkit

    app = streamkit.App("askapp", broker="log://", datadir=sys.argv[1],
                        store="memory://", web_enabled=False)

    @app.agent(app.topic("numbers", partitions=2))
    async def double(stream):
        async for value in stream:
            yield value * 2

    async def main():
        with anyio.fail_after(20):
            print(await double.ask(int(sys.argv[2])), await double.join([1, 2]))

    anyio.run(main)
""")


async def test_ask_from_a_second_process_gets_the_workers_reply(tmp_path):
    app, _, _, _ = build(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result: list[subprocess.CompletedProcess[str]] = []

    async def body() -> None:
        result.append(await anyio.run_process(
            [sys.executable, "-c", ASKER, str(tmp_path), "4"], env=env, check=False))

    await with_worker(app, body)
    (done,) = result
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().split() == ["8", "[2,", "4]"]
