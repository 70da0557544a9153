"""Versioned tables (``app.Table(..., versioned=...)``, Kafka Streams' KIP-914): each key
keeps its versions; ``as_of`` reads the one valid at a time, writes take the event's
timestamp and may come out of order, deletes are versions, history older than the
retention behind stream time is dropped, and it all survives a restart."""
from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

import streamkit
from streamkit.errors import ImproperlyConfigured
from streamkit.worker import Worker

pytestmark = pytest.mark.anyio
_ids = itertools.count()


def price_app(retention: Any = timedelta(hours=1)) -> tuple[streamkit.App, Any, Any]:
    """An app whose agent writes each event's (key, value) to a versioned table
    (a value of None deletes the key)."""
    name = f"versioned{next(_ids)}"
    app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                        web_enabled=False)
    prices = app.Table("prices", versioned=retention, key_type=str, partitions=1)

    @app.agent(app.topic("price_updates", key_type=str, partitions=1))
    async def update(stream: Any) -> None:
        async for key, value in stream.items():
            prices[key] = value
    return app, prices, update


async def test_as_of_reads_the_version_valid_at_a_time_whatever_the_write_order():
    app, prices, update = price_app()
    async with update.test_context() as ctx:
        await ctx.put("a", key="k", timestamp=10)
        await ctx.put("c", key="k", timestamp=30)
        await ctx.put("b", key="k", timestamp=20)     # out of order: into the history
        assert prices["k"] == prices.get("k") == "c"   # the latest by timestamp
        assert dict(prices.items()) == {"k": "c"}
        assert [prices.as_of("k", t) for t in (9.999, 10, 19.999, 20, 29.999, 30, 1e9)
                ] == [None, "a", "a", "b", "b", "c", "c"]
        assert prices.as_of("k", datetime(1970, 1, 1, 0, 0, 25, tzinfo=UTC)) == "b"
        assert prices.as_of("k", datetime(1970, 1, 1, 0, 0, 25)) == "b"  # naive: UTC
        assert prices.as_of("missing", 25) is None
        assert prices.as_of("missing", 25, default="none") == "none"
        assert prices.history("k") == [(10.0, "a"), (20.0, "b"), (30.0, "c")]
        await ctx.put("b2", key="k", timestamp=20)     # the same timestamp: replaced
        assert prices.history("k") == [(10.0, "a"), (20.0, "b2"), (30.0, "c")]


async def test_a_delete_is_a_version_and_reads_inside_it_find_nothing():
    app, prices, update = price_app()
    async with update.test_context() as ctx:
        await ctx.put("a", key="k", timestamp=10)
        await ctx.put(None, key="k", timestamp=20)     # Kafka's tombstone
        await ctx.put("c", key="k", timestamp=30)
        await ctx.put(None, key="k", timestamp=40)
        await ctx.put(None, key="gone", timestamp=35)  # a delete of a key never seen
        await ctx.put("early", key="gone", timestamp=5)
        assert [prices.as_of("k", t) for t in (15, 20, 25, 30, 39, 40, 50)] == \
            ["a", None, None, "c", "c", None, None]
        # deleted now: the table reads like any table without the key
        assert "k" not in prices and prices.get("k") is None
        assert dict(prices.items()) == {}
        with pytest.raises(KeyError):
            prices["k"]
        # the delete at 35, written first, still ends the value written after it at 5
        assert [prices.as_of("gone", t) for t in (4, 5, 34, 35)] == \
            [None, "early", "early", None]


async def test_history_beyond_the_retention_is_dropped_and_too_old_writes_are_counted():
    app, prices, update = price_app(retention=10)      # seconds
    async with update.test_context() as ctx:
        await ctx.put("a", key="k", timestamp=100)
        await ctx.put("b", key="k", timestamp=105)
        await ctx.put("x", key="other", timestamp=120)   # stream time 120: history
        # history from 110 on is kept: before that as_of gives nothing, even where "a"
        # was valid, except the latest version (KIP-914: it is always there)
        assert prices.as_of("k", 104.999) is None
        assert prices.as_of("k", 105) == prices.as_of("k", 110) == "b"
        assert prices.stream_time(0) == 120
        await ctx.put("c", key="k", timestamp=121)     # k's own history is trimmed now:
        # "a" (valid until 105) is gone; "b" is valid at 111, the oldest time kept
        assert prices.history("k") == [(105.0, "b"), (121.0, "c")]
        await ctx.put("late", key="k", timestamp=110.999)   # older than 121 - 10
        await ctx.put("on time", key="k", timestamp=111)    # exactly the retention
        assert prices.history("k") == [(111.0, "on time"), (121.0, "c")]
        assert prices.late_writes == 1
        assert app.monitor.late_events["prices"] == 1
        # the latest version is kept however old
        await ctx.put("old", key="quiet", timestamp=115)
        await ctx.put("v", key="d", timestamp=112)
        await ctx.put(None, key="d", timestamp=113)
        await ctx.put("y", key="other", timestamp=500)
        assert prices["quiet"] == "old" and prices.as_of("quiet", 495) == "old"
        # d's value and first delete are older than 490 (500 - 10): only the new
        # delete is kept; a delete at 490 itself says nothing a read could need
        await ctx.put(None, key="d", timestamp=495)
        await ctx.put(None, key="z", timestamp=490)
        assert prices.history("d") == [(495.0, None)]
        assert prices.history("z") == []


async def test_writes_outside_an_event_take_the_wall_clock():
    app, prices, update = price_app()
    async with update.test_context() as ctx:
        await ctx.put("from the event", key="k", timestamp=10)
    prices["k"] = "from a timer"
    ((first, _), (now, value)) = prices.history("k")
    assert first == 10.0 and value == "from a timer"
    assert abs(now - datetime.now(UTC).timestamp()) < 60
    # the event's value is valid until now; before the hour kept, nothing is known
    assert prices.as_of("k", now - 1) == "from the event"
    assert prices.as_of("k", now - 3601) is None


def test_what_a_versioned_table_cannot_be_is_refused_where_it_is_declared():
    app = streamkit.App("versioned-refusals", broker="memory://versioned-refusals",
                        store="memory://", web_enabled=False)
    with pytest.raises(ImproperlyConfigured, match="versioned= is only supported on "
                                                    "app.Table"):
        app.GlobalTable("g", versioned=60)
    with pytest.raises(ImproperlyConfigured, match="versioned= is only supported"):
        app.SetTable("s", versioned=60)
    with pytest.raises(ImproperlyConfigured, match="how long to keep"):
        app.Table("t1", versioned=True)
    with pytest.raises(ImproperlyConfigured, match="at least a millisecond"):
        app.Table("t2", versioned=timedelta(0))
    with pytest.raises(ImproperlyConfigured, match="stores its values as JSON"):
        app.Table("t3", versioned=60, value_serializer="msgpack")
    versioned = app.Table("t4", versioned=60)
    with pytest.raises(ImproperlyConfigured, match="cannot be windowed"):
        versioned.tumbling(10)
    plain = app.Table("t5")
    with pytest.raises(ImproperlyConfigured, match="versioned table; table-table"):
        plain.join(versioned, name="both")
    assert versioned.versioned == timedelta(seconds=60)


class Price(streamkit.Record, serializer="json"):
    amount: float


async def test_history_and_stream_time_survive_a_restart(tmp_path: Path):
    """log:// with RocksDB stores, two App objects on one datadir: the second worker
    restores the history (Records, read back as Records) from its store and
    changelog, and the stream time with it."""
    def build() -> tuple[streamkit.App, Any, Any]:
        app = streamkit.App("versionedrestart", broker="log://", store="rocksdb://",
                            datadir=str(tmp_path), web_enabled=False,
                            commit_interval=0.05)
        # (one key in memory: after each commit the others are read from the store)
        prices = app.Table("prices", versioned=timedelta(seconds=100), key_type=str,
                           value_type=Price, partitions=2, cache_size=1)
        updates = app.topic("price_updates", key_type=str, value_type=Price,
                            partitions=2)

        @app.agent(updates)
        async def update(stream: Any) -> None:
            async for key, value in stream.items():
                prices[key] = value
        return app, prices, updates

    a, b, c, x = Price(1.0), Price(2.0), Price(3.0), Price(9.0)
    app, prices, updates = build()
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        await wait_for(lambda: worker.ready)
        for key, value, ts in [("k", a, 1000), ("k", c, 1030), ("j", x, 1040),
                               ("k", None, 1050)]:
            await updates.send(key=key, value=value, timestamp=ts)
        await wait_for(lambda: len(prices.history("k")) == 3)
        worker.stop()

    app, prices, updates = build()
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        await wait_for(lambda: worker.ready)
        assert [prices.as_of("k", t) for t in (999, 1000, 1030, 1050)] == \
            [None, a, c, None]
        assert isinstance(prices.as_of("k", 1000), Price)
        assert prices["j"] == x and "k" not in prices
        # k's partition remembers its stream time (1050): 949 is too old there
        # (1050 - 100 = 950), 1010 goes into k's history between 1000 and 1030
        await updates.send(key="k", value=Price(0.0), timestamp=949)
        await updates.send(key="k", value=b, timestamp=1010)
        await wait_for(lambda: prices.as_of("k", 1020) == b)
        assert prices.late_writes == 1
        assert [prices.as_of("k", t) for t in (1000, 1010, 1030, 1050)] == \
            [a, b, c, None]
        worker.stop()


async def test_a_key_deleted_longer_ago_than_the_retention_leaves_the_table(
        tmp_path: Path):
    """Its stored record becomes a tombstone at the next commit once stream time has
    passed its delete by the retention, also for a delete written before a restart."""
    def build() -> tuple[streamkit.App, Any, Any]:
        app = streamkit.App("versioneddeletes", broker="log://", store="rocksdb://",
                            datadir=str(tmp_path), web_enabled=False,
                            commit_interval=0.05)
        prices = app.Table("prices", versioned=100, key_type=str, partitions=1)
        updates = app.topic("price_updates", key_type=str, partitions=1)

        @app.agent(updates)
        async def update(stream: Any) -> None:
            async for key, value in stream.items():
                prices[key] = value
        return app, prices, updates

    def stored_keys(prices: Any) -> set[bytes]:
        return {k for k, _ in prices.stores()[0].items(0) if k[:1] != b"\x00"}

    app, prices, updates = build()
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        await wait_for(lambda: worker.ready)
        for key, value, ts in [("d", "v", 1000), ("d", None, 1001), ("e", "w", 1050),
                               ("e", None, 1060), ("k", "a", 1100)]:
            await updates.send(key=key, value=value, timestamp=ts)
        # stream time 1100: d's delete (1001) is older than 1000 (1100 - 100)? not yet
        await wait_for(lambda: stored_keys(prices) == {b'"d"', b'"e"', b'"k"'})
        await updates.send(key="k", value="b", timestamp=1101.5)
        # 1101.5 - 100 = 1001.5: d is gone from the store, e (1060) is not
        await wait_for(lambda: stored_keys(prices) == {b'"e"', b'"k"'})
        assert prices.history("d") == [] and prices.history("e")[-1] == (1060.0, None)
        worker.stop()

    app, prices, updates = build()       # e's delete was written before the restart
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        await wait_for(lambda: worker.ready)
        assert stored_keys(prices) == {b'"e"', b'"k"'}
        await updates.send(key="k", value="c", timestamp=1200)
        await wait_for(lambda: stored_keys(prices) == {b'"k"'})
        assert prices["k"] == "c" and prices.as_of("e", 1200) is None
        worker.stop()


async def wait_for(condition: Any) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.sleep(0.005)
