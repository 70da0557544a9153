"""Agents through ``agent.test_context()``: stream operators, events, sinks, crashes."""
from __future__ import annotations

import itertools

import anyio
import pytest

import streamkit

pytestmark = pytest.mark.anyio
_ids = itertools.count()


class Ride(streamkit.Record, serializer="json"):
    vendorId: int
    total_amount: float = 0.0


def make_app() -> streamkit.App:
    return streamkit.App(f"ctx{next(_ids)}", broker="memory://", store="memory://",
                         web_enabled=False)


async def test_put_returns_after_the_agent_is_done_and_results_hold_yields():
    app = make_app()
    seen = []

    @app.agent(app.topic("rides", value_type=Ride))
    async def double(stream):
        async for ride in stream:
            seen.append(ride.vendorId)
            yield ride.total_amount * 2

    async with double.test_context() as ctx:
        await ctx.put(Ride(vendorId=1, total_amount=5.0))
        assert seen == [1]
        await ctx.put(Ride(vendorId=2, total_amount=1.5))
    assert ctx.results == [10.0, 3.0]


async def test_filter_enumerate_items_events():
    app = make_app()
    out = []

    @app.agent(app.topic("t"))
    async def agent(stream):
        async for i, (key, value) in stream.filter(lambda v: v % 2 == 0).items().enumerate():
            event = streamkit.current_event()
            out.append((i, key, value, event.message.offset))

    async with agent.test_context() as ctx:
        for n in range(6):
            await ctx.put(n, key=f"k{n}")
    assert out == [(0, "k0", 0, 0), (1, "k2", 2, 2), (2, "k4", 4, 4)]


async def test_async_filter_predicate():
    app = make_app()
    out = []

    async def is_big(value):
        await anyio.sleep(0)
        return value > 2

    @app.agent(app.topic("t"))
    async def agent(stream):
        async for value in stream.filter(is_big):
            out.append(value)

    async with agent.test_context() as ctx:
        for n in range(5):
            await ctx.put(n)
    assert out == [3, 4]


async def test_events_give_key_value_headers_and_message():
    app = make_app()
    events = []

    @app.agent(app.topic("t"))
    async def agent(stream):
        async for event in stream.events():
            events.append(event)

    async with agent.test_context() as ctx:
        await ctx.put({"a": 1}, key="k", headers=[("h", b"v")], timestamp=1_600_000_000.5)
    (event,) = events
    assert (event.key, event.value, event.headers) == ("k", {"a": 1}, [("h", b"v")])
    assert event.message.topic == "t" and event.message.offset == 0
    assert event.timestamp == 1_600_000_000.5


async def test_take_gives_lists_and_a_short_list_after_within():
    app = make_app()
    lists = []

    @app.agent(app.topic("t"))
    async def agent(stream):
        async for values in stream.take(3, within=0.2):
            lists.append(values)

    async with agent.test_context() as ctx:
        for n in range(4):
            await ctx.put(n)
        assert lists == [[0, 1, 2]]
        await anyio.sleep(0.5)
    assert lists == [[0, 1, 2], [3]]


async def test_group_by_in_test_context_rekeys_the_event():
    app = make_app()
    keys = []

    @app.agent(app.topic("rides", value_type=Ride))
    async def agent(stream):
        async for ride in stream.group_by(Ride.vendorId):
            keys.append(streamkit.current_event().key)

    async with agent.test_context() as ctx:
        await ctx.put(Ride(vendorId=7), key="original")
    assert keys == [7]


async def test_forward_sends_original_bytes_to_the_topic():
    app = make_app()
    high = app.topic("high")

    @app.agent(app.topic("rides", value_type=Ride))
    async def branch(stream):
        async for ride in stream:
            if ride.total_amount >= 40:
                await streamkit.current_event().forward(high)

    async with branch.test_context() as ctx:
        await ctx.put(Ride(vendorId=1, total_amount=50.0), key="1", headers=[("x", b"y")])
        await ctx.put(Ride(vendorId=2, total_amount=10.0), key="2")
        sent = ctx.sent(high)
    assert len(sent) == 1
    assert Ride.loads(sent[0].value) == Ride(vendorId=1, total_amount=50.0)
    assert sent[0].headers == [("x", b"y")]


async def test_sinks_receive_yielded_values():
    app = make_app()
    collected = []
    out_topic = app.topic("out")

    @app.agent(app.topic("t"), sink=[out_topic, collected.append])
    async def agent(stream):
        async for value in stream:
            yield value + 1

    async with agent.test_context() as ctx:
        await ctx.put(1)
        await ctx.put(2)
        sent = [m.value for m in ctx.sent(out_topic)]
    assert collected == [2, 3]
    assert sorted(sent) == [b"2", b"3"]


async def test_a_crashing_agent_is_restarted_and_goes_on_with_the_next_event(caplog):
    app = make_app()
    seen = []

    @app.agent(app.topic("t"))
    async def fragile(stream):
        async for value in stream:
            if value == "boom":
                raise RuntimeError("poison")
            seen.append(value)

    async with fragile.test_context() as ctx:
        await ctx.put("a")
        await ctx.put("boom")
        await ctx.put("b")
    assert seen == ["a", "b"]
    assert fragile.errors == 1 and fragile.restarts == 1
    assert "agent @fragile crashed on t[0]@1" in caplog.text
    assert "RuntimeError: poison" in caplog.text


async def test_tables_in_test_context_count_per_key():
    app = make_app()
    counts = app.Table("counts", default=int)

    @app.agent(app.topic("rides", value_type=Ride))
    async def count(stream):
        async for ride in stream.group_by(Ride.vendorId):
            counts[ride.vendorId] += 1

    async with count.test_context() as ctx:
        for vendor in (1, 2, 1, 1):
            await ctx.put(Ride(vendorId=vendor))
    assert counts[1] == 3 and counts[2] == 1 and counts[3] == 0
    assert 3 not in counts
    assert dict(counts.items()) == {1: 3, 2: 1}


async def test_current_event_is_none_outside_an_agent():
    assert streamkit.current_event() is None


async def test_untyped_keys_and_values_are_json_when_json_and_bytes_otherwise():
    app = make_app()
    got = []

    @app.agent(app.topic("plain"))
    async def agent(stream):
        async for key, value in stream.items():
            got.append((key, value))

    await app.topic("plain").send(key="k", value={"a": 1})
    app.broker.produce("plain", [streamkit.types.OutgoingRecord(b"a", b"\xff raw")])
    from streamkit.worker import Worker
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(5):
            while len(got) < 2:
                await anyio.sleep(0.01)
        worker.stop()
    assert sorted(got, key=repr) == sorted([("k", {"a": 1}), (b"a", b"\xff raw")], key=repr)
    assert not app.monitor.dead_letters


def test_an_explicit_json_serializer_does_not_pass_other_bytes_through():
    app = make_app()
    strict = app.topic("strict", key_serializer="json", value_serializer="json")
    loose = app.topic("loose")
    with pytest.raises(streamkit.errors.DecodeError):
        strict.value_serde.loads(b"\xff not json")
    assert loose.value_serde.loads(b"\xff not json") == b"\xff not json"
    assert loose.value_serde.loads(b'{"a": 1}') == {"a": 1}


async def test_through_in_a_test_context_writes_to_the_topic_and_goes_on():
    app = make_app()
    out = app.topic("through-out")
    seen = []

    @app.agent(app.topic("through-in"))
    async def agent(stream):
        async for value in stream.through(out):
            seen.append(value)

    async with agent.test_context() as ctx:
        await ctx.put(1)
        await ctx.put(2)
        sent = sorted(m.value for m in ctx.sent(out))
    assert seen == [1, 2] and sent == [b"1", b"2"]


async def test_take_hands_over_what_it_collected_when_an_operator_below_it_fails():
    app = make_app()
    lists = []

    def check(value):
        if value == 5:
            raise ValueError("bad value")
        return True

    @app.agent(app.topic("take-fail"))
    async def agent(stream):
        async for values in stream.filter(check).take(3, within=0.2):
            lists.append(values)

    async with agent.test_context() as ctx:
        for n in range(1, 9):
            await ctx.put(n)
        await anyio.sleep(0.5)
    # [4] is handed over before the error on 5 restarts the agent; 5 counts as done
    assert lists == [[1, 2, 3], [4], [6, 7, 8]]
    assert agent.errors == 1
