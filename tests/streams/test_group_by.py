"""group_by after another operator, with a value whose key cannot be taken (a regression
test from a code review)."""
from __future__ import annotations

import itertools

import anyio
import pytest

import streamkit
from streamkit.worker import Worker

pytestmark = pytest.mark.anyio
_ids = itertools.count()


async def test_group_by_after_filter_skips_a_value_without_the_key():
    name = f"reviewgroupby{next(_ids)}"
    app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                        web_enabled=False, commit_interval=0.05)
    topic = app.topic("orders", partitions=1)
    seen = []

    @app.agent(topic)
    async def by_customer(stream):
        async for order in stream.filter(lambda o: o["amount"] > 0).group_by(
                lambda o: o["customer"], name="by_customer"):
            seen.append(order["amount"])

    await topic.send(value={"amount": 1, "customer": "a"}, partition=0)
    await topic.send(value={"amount": 2}, partition=0)           # no customer
    await topic.send(value={"amount": 3, "customer": "b"}, partition=0)
    worker = Worker(app, install_signal_handlers=False)
    crashed = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run_async)
            with anyio.fail_after(5):
                while sorted(seen) != [1, 3]:
                    await anyio.sleep(0.01)
            worker.stop()
    except BaseException as exc:  # noqa: BLE001 - the worker died
        crashed = exc
    assert crashed is None, repr(crashed)
    assert sorted(seen) == [1, 3]


async def test_group_by_on_the_stream_itself_skips_a_value_without_the_key():
    """The same agent without filter(): the value is skipped (control case)."""
    name = f"reviewgroupby{next(_ids)}"
    app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                        web_enabled=False, commit_interval=0.05)
    topic = app.topic("orders", partitions=1)
    seen = []

    @app.agent(topic)
    async def by_customer(stream):
        async for order in stream.group_by(lambda o: o["customer"], name="by_customer"):
            seen.append(order["amount"])

    await topic.send(value={"amount": 1, "customer": "a"}, partition=0)
    await topic.send(value={"amount": 2}, partition=0)
    await topic.send(value={"amount": 3, "customer": "b"}, partition=0)
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(5):
            while sorted(seen) != [1, 3]:
                await anyio.sleep(0.01)
        worker.stop()


async def test_group_by_called_after_an_await_still_gets_its_events():
    name = f"reviewgroupby{next(_ids)}"
    app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                        web_enabled=False, commit_interval=0.05)
    topic = app.topic("orders", partitions=1)
    seen = []

    @app.agent(topic)
    async def by_customer(stream):
        await anyio.sleep(0.2)              # some set-up before iterating
        async for order in stream.group_by(lambda o: o["customer"], name="late"):
            seen.append(order["amount"])

    for i in range(3):
        await topic.send(value={"amount": i, "customer": "c"}, partition=0)
    worker = Worker(app, install_signal_handlers=False)
    got = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.move_on_after(3):
            while sorted(seen) != [0, 1, 2]:
                await anyio.sleep(0.01)
        got = sorted(seen)
        worker.stop()
    assert got == [0, 1, 2]
