"""Windowed tables through ``agent.test_context()``: window arithmetic as a user sees it."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

import streamkit

pytestmark = pytest.mark.anyio
_ids = itertools.count()


class Ride(streamkit.Record, serializer="json"):
    vendorId: int
    pickup: datetime | None = None


def make_app() -> streamkit.App:
    return streamkit.App(f"win{next(_ids)}", broker="memory://", store="memory://",
                         web_enabled=False)


def counting_agent(app, table, *, with_values=False):
    @app.agent(app.topic("rides", value_type=Ride))
    async def count(stream):
        async for ride in stream:
            table[ride.vendorId] += 1
    return count


async def test_tumbling_windows_are_half_open_and_keyed_by_range():
    app = make_app()
    table = app.Table("t", default=int).tumbling(10)
    agent = counting_agent(app, table)
    async with agent.test_context() as ctx:
        for ts in (100.0, 105.0, 109.999, 110.0):
            await ctx.put(Ride(vendorId=1), timestamp=ts)
    assert table.windows(1) == [((100.0, 110.0), 3), ((110.0, 120.0), 1)]


async def test_window_set_reads_current_now_value_and_delta():
    app = make_app()
    table = app.Table("t", default=int).tumbling(10)
    reads = []

    @app.agent(app.topic("rides", value_type=Ride))
    async def agent(stream):
        async for ride in stream:
            table[ride.vendorId] += 1
            window_set = table[ride.vendorId]
            reads.append((window_set.current(), window_set.value(), window_set.delta(10),
                          window_set.now()))

    async with agent.test_context() as ctx:
        await ctx.put(Ride(vendorId=1), timestamp=101)
        await ctx.put(Ride(vendorId=1), timestamp=102)
        await ctx.put(Ride(vendorId=1), timestamp=111)
    # now() reads the wall-clock window, far from 1970: nothing there
    assert reads == [(1, 1, 0, 0), (2, 2, 0, 0), (1, 1, 2, 0)]


async def test_hopping_updates_every_window_containing_the_timestamp():
    app = make_app()
    table = app.Table("t", default=int).hopping(10, 5)
    agent = counting_agent(app, table)
    async with agent.test_context() as ctx:
        await ctx.put(Ride(vendorId=1), timestamp=107)
    assert table.windows(1) == [((100.0, 110.0), 1), ((105.0, 115.0), 1)]


async def test_on_window_close_runs_once_per_window_on_stream_time_and_late_events_drop():
    app = make_app()
    closed = []
    table = app.Table("t", default=int,
                      on_window_close=lambda key, value: closed.append((key, value))
                      ).tumbling(10, grace=2)
    agent = counting_agent(app, table)
    async with agent.test_context() as ctx:
        await ctx.put(Ride(vendorId=1), timestamp=100)
        await ctx.put(Ride(vendorId=2), timestamp=101)
        await ctx.put(Ride(vendorId=1), timestamp=111)   # stream time 111 < 110 + 2
        assert closed == []
        await ctx.put(Ride(vendorId=1), timestamp=105)   # still within grace: counted
        await ctx.put(Ride(vendorId=1), timestamp=112)   # stream time reaches 112: close
        assert closed == [((1, (100.0, 110.0)), 2), ((2, (100.0, 110.0)), 1)]
        await ctx.put(Ride(vendorId=1), timestamp=103)   # late: dropped and counted
        await ctx.put(Ride(vendorId=1), timestamp=125)
    assert closed == [((1, (100.0, 110.0)), 2), ((2, (100.0, 110.0)), 1),
                      ((1, (110.0, 120.0)), 2)]
    assert table.late_events == 1
    assert app.monitor.late_events["t"] == 1


async def test_expired_windows_are_deleted_on_stream_time():
    app = make_app()
    table = app.Table("t", default=int).tumbling(10, expires=timedelta(seconds=20))
    agent = counting_agent(app, table)
    async with agent.test_context() as ctx:
        await ctx.put(Ride(vendorId=1), timestamp=100)
        await ctx.put(Ride(vendorId=1), timestamp=125)
        assert [w for w, _ in table.windows(1)] == [(100.0, 110.0), (120.0, 130.0)]
        await ctx.put(Ride(vendorId=1), timestamp=131)
    assert [w for w, _ in table.windows(1)] == [(120.0, 130.0), (130.0, 140.0)]


async def test_keys_of_different_types_close_and_expire_together():
    # keys that do not compare with each other ("a" < 1 raises) in one window that
    # closes and expires: each closes once and is deleted
    app = make_app()
    closed = []
    table = app.Table("t", default=int,
                      on_window_close=lambda key, value: closed.append((key, value))
                      ).tumbling(10, expires=20)

    @app.agent(app.topic("mixed"))
    async def count(stream):
        async for key in stream:
            table[key] += 1

    async with count.test_context() as ctx:
        for key, ts in [("a", 1.0), (1, 2.0), (1.5, 3.0), ("b", 15.0), ("b", 45.0)]:
            await ctx.put(key, timestamp=ts)
    assert closed == [(("a", (0.0, 10.0)), 1), ((1, (0.0, 10.0)), 1),
                      ((1.5, (0.0, 10.0)), 1), (("b", (10.0, 20.0)), 1)]
    assert dict(table.table.items()) == {("b", (40.0, 50.0)): 1}


async def test_relative_to_field_uses_the_records_time():
    app = make_app()
    table = app.Table("t", default=int).tumbling(60).relative_to_field(Ride.pickup)
    agent = counting_agent(app, table)
    t0 = datetime(2020, 7, 1, 0, 0, 30, tzinfo=timezone.utc)
    async with agent.test_context() as ctx:
        await ctx.put(Ride(vendorId=1, pickup=t0), timestamp=5)
        await ctx.put(Ride(vendorId=1, pickup=t0 + timedelta(seconds=20)), timestamp=6)
        await ctx.put(Ride(vendorId=1, pickup=t0 + timedelta(seconds=40)), timestamp=7)
    start = datetime(2020, 7, 1, tzinfo=timezone.utc).timestamp()
    assert table.windows(1) == [((start, start + 60), 2), ((start + 60, start + 120), 1)]


async def test_relative_to_now_uses_the_wall_clock():
    app = make_app()
    table = app.Table("t", default=int).tumbling(3600).relative_to_now()
    agent = counting_agent(app, table)
    async with agent.test_context() as ctx:
        await ctx.put(Ride(vendorId=1), timestamp=5)
        (window, value), = table.windows(1)
        assert value == 1 and window[0] > 1_600_000_000
        assert table[1].now() == 1


async def test_session_windows_merge_records_within_the_gap():
    app = make_app()
    # grace keeps [10, 12] open until stream time passes 12 + 5 + 10
    table = app.Table("t", default=int).session(5, grace=10)
    agent = counting_agent(app, table)
    async with agent.test_context() as ctx:
        for ts in (10, 12, 20):
            await ctx.put(Ride(vendorId=1), timestamp=ts)
        assert table.windows(1) == [((10.0, 12.0), 2), ((20.0, 20.0), 1)]
        await ctx.put(Ride(vendorId=1), timestamp=16)
    assert table.windows(1) == [((10.0, 20.0), 4)]


async def test_sliding_windows_follow_kafka_streams():
    app = make_app()
    table = app.Table("t", default=int).sliding(10)
    agent = counting_agent(app, table)
    async with agent.test_context() as ctx:
        await ctx.put(Ride(vendorId=1), timestamp=100)
        await ctx.put(Ride(vendorId=1), timestamp=105)
    # left window of each record, plus the right window of the first holding the second
    assert table.windows(1) == [((90.0, 100.0), 1), ((95.0, 105.0), 2),
                                ((100.001, 110.001), 1)]


async def test_a_record_that_would_join_a_closed_session_is_late():
    app = make_app()
    table = app.Table("t", default=int).session(5)
    agent = counting_agent(app, table)
    async with agent.test_context() as ctx:
        for ts in (10, 12, 20, 16):
            await ctx.put(Ride(vendorId=1), timestamp=ts)
    # [10, 12] closed when stream time passed 12 + 5: a closed session never changes,
    # so the record at 16, which would merge it, is dropped as late
    assert table.windows(1) == [((10.0, 12.0), 2), ((20.0, 20.0), 1)]
    assert table.late_events == 1


async def test_closed_sessions_are_deleted_after_expires():
    app = make_app()
    closed = []
    table = app.Table("t", default=int,
                      on_window_close=lambda key, value: closed.append((key, value))
                      ).session(5, expires=10)
    agent = counting_agent(app, table)
    async with agent.test_context() as ctx:
        for ts in (10, 12, 20):            # [10, 12] closes when stream time passes 17
            await ctx.put(Ride(vendorId=1), timestamp=ts)
        assert closed == [((1, (10.0, 12.0)), 2)]
        assert [w for w, _ in table.windows(1)] == [(10.0, 12.0), (20.0, 20.0)]
        await ctx.put(Ride(vendorId=1), timestamp=31)   # past 17.001 + 10: deleted
    assert closed[-1] == ((1, (20.0, 20.0)), 1)
    assert table.windows(1) == [((20.0, 20.0), 1), ((31.0, 31.0), 1)]
