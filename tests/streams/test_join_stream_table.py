"""Stream-table joins reproduce Kafka Streams' documented KStream-KTable join table.

The input sequence and the results after each input are those of the Kafka Streams
join-semantics page (all records with one key, ``null`` being a record with no value:
on the stream side it is not joined, on the table side it deletes the key):

    ts  stream  table   inner    left
    1   null
    2           null
    3   A                        A-null
    4           a
    5   B                B-a     B-a
    6           b
    7   null
    8           null
    9   C                        C-null
    10          c
    11          null
    12  null
    13          null
    14          d
    15  D                D-d     D-d

Each input is sent on its own and the test waits until it is processed before the
next, so the order of the two topics is the table's, and the output after each input
is compared. Run on ``memory://`` (memory stores) and on ``log://`` (RocksDB).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

import streamkit
from streamkit.cli.main import one_line
from streamkit.errors import ImproperlyConfigured
from streamkit.worker import Worker
from tests.running import run_until
from tests.streams import join_apps

pytestmark = pytest.mark.anyio

#: (timestamp, side, value, inner output, left output)
KAFKA_TABLE: list[tuple[int, str, str | None, list[Any], list[Any]]] = [
    (1, "stream", None, [], []),
    (2, "table", None, [], []),
    (3, "stream", "A", [], [("A", None)]),
    (4, "table", "a", [], []),
    (5, "stream", "B", [("B", "a")], [("B", "a")]),
    (6, "table", "b", [], []),
    (7, "stream", None, [], []),
    (8, "table", None, [], []),
    (9, "stream", "C", [], [("C", None)]),
    (10, "table", "c", [], []),
    (11, "table", None, [], []),
    (12, "stream", None, [], []),
    (13, "table", None, [], []),
    (14, "table", "d", [], []),
    (15, "stream", "D", [("D", "d")], [("D", "d")]),
]


def make_app(broker: str, tmp_path: Path) -> streamkit.App:
    return join_apps.make_app(broker, tmp_path, "joinst")


async def wait_for(condition: Any) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.sleep(0.005)


@pytest.mark.parametrize("broker", ["memory", "log"])
@pytest.mark.parametrize("table_kind", ["Table", "GlobalTable"])
async def test_stream_table_join_gives_kafka_streams_results(broker, table_kind, tmp_path):
    app = make_app(broker, tmp_path)
    left = app.topic("left", key_type=str, partitions=2)
    right = app.topic("right", key_type=str, partitions=2)
    table = getattr(app, table_kind)("right_table", partitions=2)
    inner: list[Any] = []
    left_join: list[Any] = []
    updates: list[Any] = []

    @app.agent(right)
    async def update(stream):
        async for key, value in stream.items():
            table[key] = value          # None: Kafka's tombstone, the key has no value
            updates.append(value)

    @app.agent(left)
    async def join_inner(stream):
        async for value, found in stream.join(table):
            inner.append((value, found))

    @app.agent(left)
    async def join_left(stream):
        async for value, found in stream.join(table, how="left"):
            left_join.append((value, found))

    drops = app.monitor.join_drops
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        await wait_for(lambda: worker.ready)
        streamed = 0
        for ts, side, value, want_inner, want_left in KAFKA_TABLE:
            seen_inner, seen_left = len(inner), len(left_join)
            if side == "table":
                done = len(updates) + 1
                await right.send(key="k", value=value, timestamp=ts)
                await wait_for(lambda done=done: len(updates) == done)
            else:
                await left.send(key="k", value=value, timestamp=ts)
                streamed += 1
                # every stream record is joined or dropped (and counted) by each agent
                await wait_for(lambda s=streamed: len(inner) + drops["right_table"]
                               + len(left_join) == 2 * s)
            assert inner[seen_inner:] == want_inner, f"inner join after ts {ts}"
            assert left_join[seen_left:] == want_left, f"left join after ts {ts}"
        # the dropped stream records are processed: their offsets are committed
        await wait_for(lambda: sum(o for tp, o in worker.committed_offsets().items()
                                   if tp.topic == "left") == 7)
        worker.stop()
    # 3 null values dropped by each join, and A and C by the inner one
    assert drops["right_table"] == 3 + 3 + 2
    assert inner == [("B", "a"), ("D", "d")]
    assert left_join == [("A", None), ("B", "a"), ("C", None), ("D", "d")]


async def test_events_without_a_key_are_dropped_and_counted_in_a_left_join(tmp_path):
    app = make_app("memory", tmp_path)
    rides = app.topic("rides", key_type=str, partitions=1)
    table = app.Table("zones", partitions=1)
    joined: list[Any] = []

    @app.agent(rides)
    async def enrich(stream):
        async for key, (value, zone) in stream.join(table, how="left").items():
            joined.append((key, value, zone))

    async def feed() -> None:
        await rides.send(key=None, value="no key")
        await rides.send(key="k", value="has key")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(feed)
            await run_until(app, lambda: joined)
    assert joined == [("k", "has key", None)]
    assert app.monitor.join_drops == {"zones": 1}


class Ride(streamkit.Record, serializer="json"):
    PULocationID: int
    fare: float


async def test_global_table_join_on_a_field_of_the_value(tmp_path):
    app = make_app("log", tmp_path)
    rides = app.topic("rides", value_type=Ride, partitions=2)
    zones = app.GlobalTable("zones")
    zone_names = app.topic("zone_names", key_type=int, partitions=1)
    joined: list[Any] = []
    loaded: list[Any] = []

    @app.agent(zone_names)
    async def load_zones(stream):
        async for location, name in stream.items():
            zones[location] = name
            loaded.append(location)

    @app.agent(rides)
    async def enrich(stream):
        async for event, zone in stream.events().join(zones, on=Ride.PULocationID):
            joined.append((event.value.PULocationID, zone))

    @app.agent(rides)
    async def enrich_left(stream):
        async for ride, zone in stream.join(zones, on=lambda r: r.PULocationID or None,
                                            how="left"):
            joined.append(("left", ride.PULocationID, zone))

    async def feed() -> None:
        await zone_names.send(key=1, value="Newark Airport")
        await zone_names.send(key=2, value="Jamaica Bay")
        await wait_for(lambda: len(loaded) == 2)
        for location in (1, 3, 2, 0):
            await rides.send(value=Ride(PULocationID=location, fare=10.0))

    async with anyio.create_task_group() as tg:
        tg.start_soon(feed)
        await run_until(app, lambda: len(joined) == 2 + 3)
    assert sorted(j for j in joined if j[0] != "left") == [(1, "Newark Airport"),
                                                          (2, "Jamaica Bay")]
    assert sorted(j for j in joined if j[0] == "left") == [
        ("left", 1, "Newark Airport"), ("left", 2, "Jamaica Bay"), ("left", 3, None)]
    # inner: 3 (no zone) and 0 (no zone); left: 0 (on= gave None, no lookup key)
    assert app.monitor.join_drops == {"zones": 3}


async def test_a_partitioned_table_refuses_on(tmp_path):
    app = make_app("memory", tmp_path)
    rides = app.topic("rides", value_type=Ride)
    table = app.Table("zones")
    stream = app.stream(rides)
    with pytest.raises(ImproperlyConfigured, match="use an app.GlobalTable for on=.*group_by"):
        stream.join(table, on=Ride.PULocationID)
    with pytest.raises(ImproperlyConfigured, match="'inner' or 'left'"):
        stream.join(table, how="outer")


async def test_a_join_of_topics_not_co_partitioned_stops_the_worker_with_one_line(tmp_path):
    app = make_app("log", tmp_path)
    rides = app.topic("rides", key_type=str, partitions=2)
    table = app.Table("zones", partitions=4)

    @app.agent(rides)
    async def enrich(stream):
        async for _ride, _zone in stream.join(table):
            pass

    worker = Worker(app, install_signal_handlers=False)
    with pytest.raises(BaseException) as caught:
        with anyio.fail_after(5):
            await worker.run_async()
    line = one_line(caught.value)
    assert line == ("stream-table join: topic 'rides' has 2 partitions and table 'zones' "
                    "has 4; they must be co-partitioned: group_by the stream first "
                    "(stream.group_by(key, partitions=4)), give the table partitions=2, "
                    "or join an app.GlobalTable")


async def test_a_join_in_agent_test_context(tmp_path):
    app = make_app("memory", tmp_path)
    rides = app.topic("rides", key_type=str, value_type=Ride)
    zones = app.GlobalTable("zones")
    out: list[Any] = []

    @app.agent(rides)
    async def enrich(stream):
        async for ride, zone in stream.join(zones, on=Ride.PULocationID, how="left"):
            out.append((ride.PULocationID, zone))

    async with enrich.test_context() as agent:
        zones[7] = "Astoria"
        await agent.put(Ride(PULocationID=7, fare=1.0), key="a")
        await agent.put(Ride(PULocationID=8, fare=1.0), key="b")
        zones[8] = "Astoria Park"      # a table update emits nothing by itself
        await agent.put(Ride(PULocationID=8, fare=1.0), key="c")
    assert out == [(7, "Astoria"), (8, None), (8, "Astoria Park")]
