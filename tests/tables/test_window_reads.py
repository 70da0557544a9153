"""Reading a windowed table outside an event (a timer, a web view): ``.current()``,
``.value()`` and ``.delta()`` say there is no event instead of reading the wall clock's
window; ``.latest()`` reads the key's newest window; an event can be passed in."""
from __future__ import annotations

import itertools

import anyio
import pytest

import streamkit
from streamkit.errors import NoCurrentEvent
from tests.running import running

pytestmark = pytest.mark.anyio
_ids = itertools.count()


class Ride(streamkit.Record, serializer="json"):
    vendorId: int


def make_app(**settings) -> streamkit.App:
    name = f"winreads{next(_ids)}"
    return streamkit.App(name, broker=f"memory://{name}", store="memory://",
                         web_enabled=False, **settings)


def counting_agent(app, table):
    @app.agent(app.topic("rides", value_type=Ride))
    async def count(stream):
        async for ride in stream:
            table[ride.vendorId] += 1
    return count


@pytest.mark.parametrize("read", ["current()", "value()", "delta(10)"])
async def test_reads_of_the_events_window_outside_an_event_raise(read):
    app = make_app()
    table = app.Table("per_10s", default=int).tumbling(10)
    agent = counting_agent(app, table)
    async with agent.test_context() as ctx:
        await ctx.put(Ride(vendorId=1), timestamp=101)
    with pytest.raises(NoCurrentEvent) as raised:
        eval(f"table[1].{read}")   # noqa: S307 - one of the three reads above
    message = str(raised.value)
    assert message.startswith(f"per_10s[1].{read} reads the window of the current event")
    assert ".latest()" in message and ".now()" in message
    assert isinstance(raised.value, RuntimeError)     # as Faust's error


async def test_an_event_passed_in_picks_the_window_outside_the_agent():
    app = make_app()
    table = app.Table("per_10s", default=int).tumbling(10)
    agent = counting_agent(app, table)
    async with agent.test_context() as ctx:
        first = await ctx.put(Ride(vendorId=1), timestamp=101)
        await ctx.put(Ride(vendorId=1), timestamp=105)
        later = await ctx.put(Ride(vendorId=1), timestamp=112)
    assert table[1].current(first) == 2 and table[1].value(first) == 2
    assert table[1].current(later) == 1
    assert table[1].delta(10, later) == 2          # [100, 110): 112 - 10 falls in it


async def test_value_of_a_wall_clock_table_needs_no_event():
    app = make_app()
    table = app.Table("per_hour", default=int).tumbling(3600).relative_to_now()
    agent = counting_agent(app, table)
    async with agent.test_context() as ctx:
        await ctx.put(Ride(vendorId=1), timestamp=5)
    assert table[1].value() == 1 == table[1].now()
    with pytest.raises(NoCurrentEvent):     # the message timestamp needs a message
        table[1].current()


async def test_latest_reads_the_newest_window_open_or_closed():
    app = make_app()
    table = app.Table("per_10s", default=int).tumbling(10)
    agent = counting_agent(app, table)
    async with agent.test_context() as ctx:
        for vendor, ts in ((1, 101), (2, 103), (1, 105), (1, 111)):
            await ctx.put(Ride(vendorId=vendor), timestamp=ts)
        # key 2's window is closed (stream time 111), key 1 has an open one
        assert (table[1].latest(), table[2].latest(), table[3].latest()) == (1, 1, 0)
        # stream time 135 closes every window above; windows are kept (no expires)
        await ctx.put(Ride(vendorId=3), timestamp=135)
    assert (table[1].latest(), table[2].latest(), table[3].latest()) == (1, 1, 1)
    assert table.windows(1) == [((100.0, 110.0), 2), ((110.0, 120.0), 1)]


async def test_latest_finds_closed_windows_until_they_expire():
    app = make_app()
    table = app.Table("per_10s", default=int).tumbling(10, expires=30)
    agent = counting_agent(app, table)
    async with agent.test_context() as ctx:
        await ctx.put(Ride(vendorId=1), timestamp=100)
        await ctx.put(Ride(vendorId=1), timestamp=101)
        await ctx.put(Ride(vendorId=2), timestamp=125)     # closes [100, 110) of key 1
        assert table[1].latest() == 2
        await ctx.put(Ride(vendorId=2), timestamp=140)     # expires it (110 + 30)
        assert table[1].latest() == 0 and table[2].latest() == 1


async def test_latest_of_hopping_windows_is_the_latest_start():
    app = make_app()
    table = app.Table("hop", default=int).hopping(10, 5)
    agent = counting_agent(app, table)
    async with agent.test_context() as ctx:
        await ctx.put(Ride(vendorId=1), timestamp=107)
        await ctx.put(Ride(vendorId=1), timestamp=112)
    assert dict(table.windows(1)) == {(100.0, 110.0): 1, (105.0, 115.0): 2,
                                      (110.0, 120.0): 1}
    assert table[1].latest() == 1


async def test_a_timer_of_a_running_worker_reads_latest_and_is_told_about_current():
    app = make_app(commit_interval=0.05)
    table = app.Table("per_minute", default=int).tumbling(60)
    rides = app.topic("rides", key_type=str, value_type=Ride)
    readings: list[object] = []

    @app.agent(rides)
    async def count(stream):
        async for ride in stream.group_by(Ride.vendorId):
            table[ride.vendorId] += 1

    @app.timer(interval=0.02)
    async def report():
        try:
            table[1].current()
        except NoCurrentEvent as exc:
            readings.append(type(exc).__name__)
        readings.append(table[1].latest())

    async with running(app):
        with anyio.fail_after(10):
            for n in range(3):          # 1970, far from the wall clock's window
                await rides.send(key="1", value=Ride(vendorId=1), timestamp=600 + n)
            while 3 not in readings:
                await anyio.sleep(0.01)
    assert "NoCurrentEvent" in readings
