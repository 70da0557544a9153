"""``stream.tee(n)``, ``take_with_timeout``/``take_events``, and streams over plain
iterables (``app.stream([1, 2, 3])``)."""
from __future__ import annotations

import itertools
import time

import anyio
import pytest

import streamkit
from tests.running import run_until

pytestmark = pytest.mark.anyio
_ids = itertools.count()


def make_app() -> streamkit.App:
    name = f"teetake{next(_ids)}"
    return streamkit.App(name, broker=f"memory://{name}", store="memory://",
                         web_enabled=False, commit_interval=0.02)


def committed(app: streamkit.App, topic: str) -> int:
    return sum(o.committed for o in app.broker.group_offsets(app.conf.id)
               if o.topic == topic)


async def test_tee_branches_each_see_every_event_and_commits_wait_for_the_slowest():
    app = make_app()
    topic = app.topic("t", partitions=1)
    fast: list[int] = []
    slow: list[int] = []
    commits_seen: list[tuple[int, int]] = []
    table = app.Table("per_key", default=int)

    async def collect(branch, into, delay):
        async for value in branch:
            await anyio.sleep(delay)
            into.append(value)
            event = streamkit.current_event()
            assert event is not None and event.value == value
            if into is slow:
                table[value % 2] += 1      # the branch's task finds the partition

    @app.agent(topic)
    async def split(stream):
        a, b = stream.tee(2)
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, a, fast, 0.0)
            tg.start_soon(collect, b, slow, 0.02)

    for i in range(20):
        await topic.send(value=i, partition=0)

    def done() -> bool:
        commits_seen.append((committed(app, "t"), len(slow)))
        return len(slow) == 20 and dict(table.items()) == {0: 10, 1: 10}
    await run_until(app, done)
    assert fast == list(range(20)) and slow == list(range(20))
    # a committed offset never passes what the slow branch finished
    assert all(offset <= finished for offset, finished in commits_seen)
    assert committed(app, "t") == 20


async def test_tee_needs_at_least_one_branch():
    app = make_app()
    with pytest.raises(ValueError):
        app.stream([1]).tee(0)


async def test_take_with_timeout_gives_what_is_there_after_within():
    app = make_app()
    topic = app.topic("t", partitions=1)
    lists: list[tuple[list[int], float]] = []
    started = time.monotonic()

    @app.agent(topic)
    async def batches(stream):
        async for values in stream.take_with_timeout(10, within=0.3):
            lists.append((values, time.monotonic() - started))

    for i in range(3):
        await topic.send(value=i, partition=0)
    await run_until(app, lambda: lists)
    (values, at), = lists
    assert values == [0, 1, 2]          # fewer than 10: given once within passed
    assert at >= 0.3


async def test_take_events_gives_lists_of_events():
    app = make_app()
    topic = app.topic("t", partitions=1)
    got: list[list[tuple[int, int]]] = []

    @app.agent(topic)
    async def batches(stream):
        async for events in stream.take_events(2, within=0.5):
            got.append([(e.message.offset, e.value) for e in events])

    for i in range(4):
        await topic.send(value=i * 10, partition=0)
    await run_until(app, lambda: len(got) == 2)
    assert got == [[(0, 0), (1, 10)], [(2, 20), (3, 30)]]


async def test_app_stream_over_plain_and_async_iterables_ends_with_them():
    app = make_app()

    async def numbers():
        for i in range(3):
            yield i

    assert [v async for v in app.stream([1, 2, 3])] == [1, 2, 3]
    assert [v async for v in app.Stream(numbers())] == [0, 1, 2]
    doubled = [v async for v in app.stream(range(5)).filter(lambda v: v % 2 == 0)]
    assert doubled == [0, 2, 4]
    assert [v async for v in app.stream(range(5)).take(2)] == [[0, 1], [2, 3], [4]]
    async for event in app.stream(["a"]).events():
        assert (event.value, event.message.offset) == ("a", 0)


async def test_streams_of_ended_iterables_are_not_kept():
    app = make_app()
    for _ in range(5):
        assert [v async for v in app.stream([1])] == [1]
    assert len(app.fetcher.local_streams) == 1      # the last one only


async def test_take_with_timestamp_adds_the_message_time_to_dict_values():
    app = make_app()
    topic = app.topic("t", partitions=1)
    got: list[list[dict]] = []

    @app.agent(topic)
    async def batches(stream):
        async for values in stream.take_with_timestamp(2, 0.5, "ts"):
            got.append(values)

    await topic.send(value={"a": 1}, timestamp=1000.5, partition=0)
    await topic.send(value={"a": 2}, timestamp=1001.0, partition=0)
    await run_until(app, lambda: got)
    assert got == [[{"a": 1, "ts": 1000.5}, {"a": 2, "ts": 1001.0}]]


async def test_a_tee_branch_that_stops_early_does_not_hold_the_others():
    app = make_app()
    a, b = app.stream(range(10)).tee(2)
    short: list[int] = []
    full: list[int] = []

    async def take_three() -> None:
        async for value in a:
            short.append(value)
            if len(short) == 3:
                break

    async def take_all() -> None:
        async for value in b:
            full.append(value)

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            tg.start_soon(take_three)
            tg.start_soon(take_all)
    assert short == [0, 1, 2] and full == list(range(10))


async def test_an_error_below_a_tee_reaches_every_branch():
    app = make_app()

    def boom(value):
        if value == 2:
            raise ValueError("bad value")
        return True

    branches = app.stream(range(5)).filter(boom).tee(3)
    errors: list[str] = []

    async def read(branch) -> None:
        try:
            async for _ in branch:
                pass
        except ValueError as exc:
            errors.append(str(exc))

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            for branch in branches:
                tg.start_soon(read, branch)
    assert errors == ["bad value"] * 3
