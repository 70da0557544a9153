"""``stream.noack()`` / ``stream.ack(event)`` / ``event.ack()``: offsets follow the
acknowledgements, on a real log on disk, across a worker restart."""
from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

import streamkit
from streamkit.worker import Worker

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]


def committed(app: streamkit.App, topic: str) -> int | None:
    for o in app.broker.group_offsets(app.conf.id):
        if o.topic == topic and o.partition == 0:
            return o.committed
    return None


def build(datadir, skip: set[int], seen: list[int], by_event: bool = False):
    app = streamkit.App("noackapp", broker="log://", datadir=str(datadir),
                        store="memory://", web_enabled=False, commit_interval=0.05)
    topic = app.topic("jobs", partitions=1)

    @app.agent(topic)
    async def work(stream):
        async for event in stream.noack().events():
            seen.append(event.value)
            if event.value not in skip:
                if by_event:
                    event.ack()
                else:
                    await stream.ack(event)
    return app, topic


async def run(app, until, after=None) -> None:
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(10):
            while not until():
                await anyio.sleep(0.01)
            if after is not None:
                while not after():
                    await anyio.sleep(0.01)
        worker.stop()


async def test_an_unacked_event_is_read_again_after_a_restart_and_those_before_not(tmp_path):
    seen: list[int] = []
    app, topic = build(tmp_path, skip={2}, seen=seen)
    for i in range(5):
        await topic.send(value=i, partition=0)
    # while the worker runs, its commits stop at the unacked event: what a crash leaves
    await run(app, until=lambda: len(seen) == 5,
              after=lambda: committed(app, "jobs") == 2)
    assert committed(app, "jobs") == 2           # and the graceful stop commits no more
    again: list[int] = []
    app, topic = build(tmp_path, skip=set(), seen=again)
    await run(app, until=lambda: len(again) == 3,
              after=lambda: committed(app, "jobs") == 5)
    # 2 was never acked: it comes again, and with it the acked ones after it (one
    # committed offset per partition, as in Kafka and Faust); 0 and 1 do not
    assert again == [2, 3, 4]


async def test_event_ack_commits_like_stream_ack(tmp_path):
    seen: list[int] = []
    app, topic = build(tmp_path, skip=set(), seen=seen, by_event=True)
    for i in range(3):
        await topic.send(value=i, partition=0)
    await run(app, until=lambda: len(seen) == 3,
              after=lambda: committed(app, "jobs") == 3)


async def test_an_unacked_event_holds_the_commit_even_after_the_agent_moves_on(tmp_path):
    seen: list[int] = []
    app, topic = build(tmp_path, skip={0}, seen=seen)
    for i in range(3):
        await topic.send(value=i, partition=0)
    await run(app, until=lambda: len(seen) == 3)
    assert committed(app, "jobs") in (None, 0)


async def test_noack_take_lists_wait_for_their_acks(tmp_path):
    app = streamkit.App("noacktake", broker="log://", datadir=str(tmp_path),
                        store="memory://", web_enabled=False, commit_interval=0.05)
    topic = app.topic("jobs", partitions=1)
    lists: list[list[int]] = []

    @app.agent(topic)
    async def work(stream):
        async for events in stream.noack_take(2, within=0.2):
            lists.append([e.value for e in events])
            if len(lists) == 1:                 # acknowledge the first list only
                for event in events:
                    event.ack()

    for i in range(4):
        await topic.send(value=i, partition=0)
    await run(app, until=lambda: len(lists) == 2,
              after=lambda: committed(app, "jobs") == 2)
    assert lists == [[0, 1], [2, 3]]
    assert committed(app, "jobs") == 2


WORKER = textwrap.dedent("""
    import sys
    import streamkit
    from streamkit.worker import Worker

    app = streamkit.App("noackapp", broker="log://", datadir=sys.argv[1],
                        store="memory://", web_enabled=False, commit_interval=0.05)

    @app.agent(app.topic("jobs", partitions=1))
    async def work(stream):
        async for event in stream.noack().events():
            print(event.value, flush=True)
            if event.value != 2:
                event.ack()

    Worker(app).run()
""")


async def test_after_a_sigkill_the_unacked_event_comes_again_and_those_before_not(tmp_path):
    seen: list[int] = []
    app, topic = build(tmp_path, skip=set(), seen=seen)
    for i in range(5):
        await topic.send(value=i, partition=0)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await anyio.open_process([sys.executable, "-c", WORKER, str(tmp_path)],
                                    env=env, stderr=None)
    try:
        assert proc.stdout is not None
        printed = b""
        with anyio.fail_after(20):
            while printed.split() != [b"0", b"1", b"2", b"3", b"4"]:
                printed += await proc.stdout.receive()
            while committed(app, "jobs") != 2:
                await anyio.sleep(0.02)
    finally:
        proc.kill()                               # no graceful stop: a crash
        await proc.wait()
        await proc.aclose()
    await run(app, until=lambda: len(seen) == 3,
              after=lambda: committed(app, "jobs") == 5)
    assert seen == [2, 3, 4]
