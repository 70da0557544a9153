"""``app.channel()``: an in-memory channel agents consume, in a worker and in a test
context; ``app.stream(channel)``."""
from __future__ import annotations

import itertools

import anyio
import pytest

import streamkit
from streamkit.worker import Worker
from tests.running import run_until

pytestmark = pytest.mark.anyio
_ids = itertools.count()


class Order(streamkit.Record, serializer="json"):
    id: int
    amount: float


def make_app() -> streamkit.App:
    name = f"channels{next(_ids)}"
    return streamkit.App(name, broker=f"memory://{name}", store="memory://",
                         web_enabled=False, commit_interval=0.02)


async def test_an_agent_consumes_a_channel_and_writes_nothing_to_the_broker():
    app = make_app()
    orders = app.channel(value_type=Order)
    got: list[tuple[str, Order]] = []
    big = app.topic("big_orders", value_type=Order)

    @app.agent(orders)
    async def handle(stream):
        async for key, order in stream.items():
            got.append((key, order))
            if order.amount > 10:
                await streamkit.current_event().forward(big)

    # sent before the worker runs: waits in the channel for its first consumer
    await orders.send(key="a", value=Order(1, 5.0))
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        await orders.put(Order(2, 50.0), key="b")
        meta = await handle.send(value=Order(3, 1.0))
        with anyio.fail_after(5):
            while len(got) < 3:
                await anyio.sleep(0.01)
        worker.stop()
    assert got == [("a", Order(1, 5.0)), ("b", Order(2, 50.0)), (None, Order(3, 1.0))]
    assert meta.offset == 2
    assert orders.name not in app.broker.list_topics()
    assert not any(o.topic == orders.name for o in app.broker.group_offsets(app.conf.id))
    forwarded = app.broker.fetch(streamkit.TopicPartition("big_orders", 0), 0, 10) + \
        [m for p in range(1, 4)
         for m in app.broker.fetch(streamkit.TopicPartition("big_orders", p), 0, 10)]
    assert [Order.loads(m.value) for m in forwarded] == [Order(2, 50.0)]


async def test_a_worker_stops_an_agent_waiting_on_a_quiet_channel_at_once():
    app = make_app()
    quiet = app.channel()
    started = anyio.Event()

    @app.agent(quiet)
    async def idle(stream):
        started.set()
        async for _ in stream:
            pass

    worker = Worker(app, install_signal_handlers=False, shutdown_timeout=5)
    with anyio.fail_after(2):      # well under the shutdown timeout
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run_async)
            await started.wait()
            worker.stop()


async def test_concurrent_instances_share_a_channel_and_two_agents_each_get_all():
    app = make_app()
    channel = app.channel()
    first: list[int] = []
    second: list[int] = []

    @app.agent(channel, concurrency=2)
    async def one(stream):
        async for value in stream:
            first.append(value)

    @app.agent(channel)
    async def two(stream):
        async for value in stream:
            second.append(value)

    async def feed():
        for i in range(10):
            await channel.send(value=i)
    app.spawn("feed", feed)
    await run_until(app, lambda: len(first) == 10 and len(second) == 10)
    assert sorted(first) == list(range(10)) and second == list(range(10))


async def test_send_waits_while_the_consumer_has_maxsize_values_waiting():
    app = make_app()
    channel = app.channel(maxsize=2)
    stream = app.stream(channel)
    await channel.send(value=1)
    await channel.send(value=2)
    with anyio.move_on_after(0.1) as scope:
        await channel.send(value=3)
    assert scope.cancelled_caught          # no room: the third send waited
    got = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(channel.put, 4)   # waits for room, then goes in

        async def read() -> None:
            async for value in stream:
                got.append(value)
                if len(got) == 3:
                    stream.stop()
        tg.start_soon(read)
    assert got == [1, 2, 4]     # the send cancelled while it waited put nothing


async def test_a_channel_agent_in_a_test_context():
    app = make_app()
    channel = app.channel(value_type=int)
    total = app.Table("total", default=int)

    @app.agent(channel)
    async def add(stream):
        async for value in stream:
            total["sum"] += value
            yield value * 2

    async with add.test_context() as ctx:
        await ctx.put(2)
        await ctx.put(3)
    assert ctx.results == [4, 6]
    assert total["sum"] == 5


async def test_ask_an_agent_that_consumes_a_channel():
    app = make_app()
    channel = app.channel()

    @app.agent(channel)
    async def square(stream):
        async for value in stream:
            yield value * value

    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(5):
            assert await square.ask(7) == 49
        worker.stop()
