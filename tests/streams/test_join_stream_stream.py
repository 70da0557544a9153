"""Stream-stream joins (``left.join(right, within=...)``) give Kafka Streams' results.

The first table is the KStream-KStream join table of the Kafka Streams join-semantics
page (one key; ``null`` is a record with no value, which is not joined), with a window
that holds every record. With Kafka 3.1+'s semantics, which streamkit follows, a left
or outer join gives a record with no match only once its window has closed, so while
every window is open the three kinds give the same pairs:

    ts  left  right  inner (= left = outer while the windows are open)
    1   null
    2         null
    3   A
    4         a      A-a
    5   B            B-a
    6         b      A-b B-b
    7   null
    8         null
    9   C            C-a C-b
    10        c      A-c B-c C-c
    11        null
    12  null
    13        null
    14        d      A-d B-d C-d
    15  D            D-a D-b D-c D-d

The second table has a short window (2 s, grace 1 s), so windows close while it runs
and the records that never joined come out of the left and outer joins then, once.
A left record's window closes on the right side's stream time and a right record's on
the left side's (decision 048).

Each input is sent on its own and the test waits until all three agents are done with
it, so the order of the two topics is the table's; the output after each input is
compared. Run on ``memory://`` and on ``log://`` (RocksDB buffers).
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import msgpack
import pytest

import streamkit
from streamkit.cli.main import one_line
from streamkit.errors import ImproperlyConfigured
from streamkit.worker import Worker
from tests.running import run_until
from tests.streams import join_apps

pytestmark = pytest.mark.anyio
KINDS = ("inner", "left", "outer")

#: (timestamp, side, value, output of the three kinds)
KAFKA_TABLE: list[tuple[int, str, str | None, list[Any]]] = [
    (1, "L", None, []),
    (2, "R", None, []),
    (3, "L", "A", []),
    (4, "R", "a", [("A", "a")]),
    (5, "L", "B", [("B", "a")]),
    (6, "R", "b", [("A", "b"), ("B", "b")]),
    (7, "L", None, []),
    (8, "R", None, []),
    (9, "L", "C", [("C", "a"), ("C", "b")]),
    (10, "R", "c", [("A", "c"), ("B", "c"), ("C", "c")]),
    (11, "R", None, []),
    (12, "L", None, []),
    (13, "R", None, []),
    (14, "R", "d", [("A", "d"), ("B", "d"), ("C", "d")]),
    (15, "L", "D", [("D", "a"), ("D", "b"), ("D", "c"), ("D", "d")]),
]

#: within 2 s, grace 1 s: a record at t closes when the other side's stream time
#: passes t + 3, and a record more than 1 s behind its own side's stream time is late.
#: (timestamp, side, value, output)
ALL = ("inner", "left", "outer")
CLOSING_TABLE: list[tuple[int, str, str, dict[str, list[Any]]]] = [
    (1, "L", "A", {}),
    (2, "R", "a", {k: [("A", "a")] for k in ALL}),
    (3, "L", "B", {k: [("B", "a")] for k in ALL}),
    (10, "L", "C", {}),                     # closes a: joined, nothing to give
    (14, "R", "x", {"left": [("C", None)], "outer": [("C", None)]}),   # A, B, C closed
    (8, "L", "late", {}),                   # 8 + 1 < 10: late, dropped and counted
    (15, "L", "D", {k: [("D", "x")] for k in ALL}),
    (30, "R", "e", {}),                     # closes D: joined
    (40, "L", "F", {"outer": [(None, "e")]}),                   # x and e closed
    (38, "R", "g", {k: [("F", "g")] for k in ALL}),   # out of order, within grace
    (41, "R", "f", {k: [("F", "f")] for k in ALL}),
]


def make_app(broker: str, tmp_path: Path) -> streamkit.App:
    return join_apps.make_app(broker, tmp_path, "joinss")


def join_agents(app: streamkit.App, left: Any, right: Any, **window: Any
                ) -> dict[str, list[Any]]:
    """Three agents over ``left.join(right, **window)``, one per kind of join; returns
    the results each gets, by kind."""
    results: dict[str, list[Any]] = {kind: [] for kind in KINDS}
    for kind in KINDS:
        def make(kind: str = kind) -> Any:
            async def joined(stream: Any) -> None:
                async for left_value, right_value in stream:
                    results[kind].append((left_value, right_value))
            return joined
        app.agent(left.join(right, how=kind, name=f"j-{kind}", **window),
                  name=f"join_{kind}")(make())
    return results


async def wait_for(condition: Any) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.sleep(0.005)


def done_with(app: streamkit.App, meta: Any) -> bool:
    """Whether every agent is done with the record ``meta`` says was written."""
    return all(
        any(stream.positions().get(tp) == meta.offset + 1
            for stream in agent.streams for tp in [_tp(meta)])
        for agent in app.agents.values())


def _tp(meta: Any) -> Any:
    from streamkit.types import TopicPartition
    return TopicPartition(meta.topic, meta.partition)


async def play(app: streamkit.App, left: Any, right: Any,
               inputs: list[tuple[int, str, Any]], results: dict[str, list[Any]]
               ) -> list[dict[str, list[Any]]]:
    """Send ``inputs`` one at a time through a worker; the new results of each kind
    after each input."""
    outputs = []
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        await wait_for(lambda: worker.ready)
        for ts, side, value in inputs:
            seen = {kind: len(got) for kind, got in results.items()}
            topic = left if side == "L" else right
            meta = await topic.send(key="k", value=value, timestamp=ts)
            await wait_for(lambda meta=meta: done_with(app, meta))
            outputs.append({kind: got[seen[kind]:] for kind, got in results.items()})
        worker.stop()
    return outputs


@pytest.mark.parametrize("broker", ["memory", "log"])
async def test_stream_stream_join_gives_kafka_streams_results(broker, tmp_path):
    app = make_app(broker, tmp_path)
    left = app.topic("left", key_type=str, partitions=2)
    right = app.topic("right", key_type=str, partitions=2)
    results = join_agents(app, left, right, within=timedelta(seconds=15))
    outputs = await play(app, left, right, [row[:3] for row in KAFKA_TABLE], results)
    for (ts, _side, _value, want), got in zip(KAFKA_TABLE, outputs, strict=True):
        for kind in KINDS:
            assert got[kind] == want, f"{kind} join after ts {ts}"
    # the 7 null records are not joined, by each of the three joins
    assert app.monitor.join_drops == {"j-inner": 7, "j-left": 7, "j-outer": 7}


@pytest.mark.parametrize("broker", ["memory", "log"])
async def test_unjoined_records_come_out_once_their_window_has_closed(broker, tmp_path):
    app = make_app(broker, tmp_path)
    left = app.topic("left", key_type=str, partitions=2)
    right = app.topic("right", key_type=str, partitions=2)
    results = join_agents(app, left, right, within=2, grace=1)
    outputs = await play(app, left, right, [row[:3] for row in CLOSING_TABLE], results)
    for (ts, _side, _value, want), got in zip(CLOSING_TABLE, outputs, strict=True):
        for kind in KINDS:
            assert got[kind] == want.get(kind, []), f"{kind} join after ts {ts}"
    # "late" was dropped by each join
    assert app.monitor.join_drops == {"j-inner": 1, "j-left": 1, "j-outer": 1}


async def test_before_and_after_make_an_asymmetric_window(tmp_path):
    # a dropoff joins the pickups of the 10 s before it, and none after it
    app = make_app("memory", tmp_path)
    pickups = app.topic("pickups", key_type=str, partitions=1)
    dropoffs = app.topic("dropoffs", key_type=str, partitions=1)
    results = join_agents(app, pickups, dropoffs, before=0, after=10, grace=100)
    inputs = [(100, "L", "p100"), (105, "R", "d105"), (111, "R", "d111"),
              (95, "R", "d95"), (100, "R", "d100")]
    outputs = await play(app, pickups, dropoffs, inputs, results)
    assert [out["inner"] for out in outputs] == [
        [], [("p100", "d105")], [], [], [("p100", "d100")]]


class Pickup(streamkit.Record, serializer="json"):
    trip: str
    zone: int


class Dropoff(streamkit.Record, serializer="json"):
    trip: str
    fare: float


async def test_each_side_decodes_with_its_own_types_and_items_give_the_results_keys(
        tmp_path):
    app = make_app("log", tmp_path)
    pickups = app.topic("pickups", key_type=str, value_type=Pickup, partitions=1)
    dropoffs = app.topic("dropoffs", key_type=str, value_type=Dropoff, partitions=1)
    got: list[Any] = []

    @app.agent(pickups.join(dropoffs, within=timedelta(hours=3), how="left"))
    async def trips(stream):
        async for trip, (pickup, dropoff) in stream.items():
            got.append((trip, pickup, dropoff))

    async def feed() -> None:
        hour = 3600
        await pickups.send(key="t1", value=Pickup(trip="t1", zone=132), timestamp=hour)
        await pickups.send(key="t2", value=Pickup(trip="t2", zone=7), timestamp=hour)
        await dropoffs.send(key="t1", value=Dropoff(trip="t1", fare=52.5),
                            timestamp=hour + 1800)
        # t2's window closes when the drop-offs' stream time passes 1 h + 3 h: this
        # drop-off of another trip does it
        await dropoffs.send(key="t9", value=Dropoff(trip="t9", fare=8.0),
                            timestamp=5 * hour)

    async with anyio.create_task_group() as tg:
        tg.start_soon(feed)
        await run_until(app, lambda: len(got) == 2)
    assert got == [("t1", Pickup(trip="t1", zone=132), Dropoff(trip="t1", fare=52.5)),
                   ("t2", Pickup(trip="t2", zone=7), None)]


async def test_records_without_a_key_are_dropped_and_counted(tmp_path):
    app = make_app("memory", tmp_path)
    left = app.topic("left", key_type=str, partitions=1)
    right = app.topic("right", key_type=str, partitions=1)
    results = join_agents(app, left, right, within=5)
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        await wait_for(lambda: worker.ready)
        await left.send(key=None, value="no key", timestamp=1)
        await right.send(key=None, value="no key", timestamp=1)
        meta = await right.send(key="k", value="r", timestamp=1)
        await wait_for(lambda: done_with(app, meta))
        worker.stop()
    assert results == {"inner": [], "left": [], "outer": []}
    assert app.monitor.join_drops == {"j-inner": 2, "j-left": 2, "j-outer": 2}


async def test_topics_with_different_partition_counts_are_refused_at_start(tmp_path):
    app = make_app("log", tmp_path)
    left = app.topic("left", key_type=str, partitions=4)
    right = app.topic("right", key_type=str, partitions=2)

    @app.agent(left.join(right, within=5))
    async def joined(stream):
        async for _pair in stream:
            pass

    worker = Worker(app, install_signal_handlers=False)
    with pytest.raises(BaseException) as caught:
        with anyio.fail_after(5):
            await worker.run_async()
    assert one_line(caught.value) == (
        "stream-stream join 'left-right-join': topic 'left' has 4 partitions and 'right' "
        "has 2; the two topics of a join must be co-partitioned (the same partition "
        "count, keyed alike)")


def test_a_join_needs_a_window_a_kind_and_two_topics(tmp_path):
    app = make_app("memory", tmp_path)
    left = app.topic("left")
    right = app.topic("right")
    with pytest.raises(ImproperlyConfigured, match="give within="):
        left.join(right)
    with pytest.raises(ImproperlyConfigured, match="'inner', 'left' or 'outer'"):
        left.join(right, within=1, how="full")
    with pytest.raises(ImproperlyConfigured, match="must not be negative"):
        left.join(right, within=-1)
    with pytest.raises(ImproperlyConfigured, match="each side of a stream-stream join"):
        left.join(left, within=1)
    joined = left.join(right, within=1, after=0)
    assert (joined.before_ms, joined.after_ms, joined.grace_ms) == (1000, 0, 0)
    with pytest.raises(ImproperlyConfigured, match="read by an agent, not written"):
        joined.send_soon(value=1)


async def send_each_committed(app: streamkit.App, left: Any, right: Any,
                              sends: list[tuple[str, str, str, int]]) -> None:
    """Run a worker of ``app``: send ``(side, key, value, ts)`` one at a time, each
    waited for until committed (the buffers as of it are in the changelog then)."""
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        await wait_for(lambda: worker.ready)
        for side, key, value, ts in sends:
            meta = await (left if side == "L" else right).send(key=key, value=value,
                                                               timestamp=ts)
            await wait_for(lambda meta=meta: worker.committed_offsets().get(
                _tp(meta)) == meta.offset + 1)
        worker.stop()


async def run_once(tmp_path: Path, app_id: str, sends: list[tuple[str, str, str, int]],
                   **join: Any) -> list[Any]:
    """One worker of a fresh App over ``left.join(right, **join)`` on ``log://`` in
    ``tmp_path`` (the buffers of the runs before are restored): sends ``(side, key,
    value, ts)`` one at a time, each waited for until committed; returns the agent's
    ``(key, pair)`` results."""
    app = streamkit.App(app_id, broker="log://", store="rocksdb://",
                        datadir=str(tmp_path), web_enabled=False, commit_interval=0.05)
    left = app.topic("left", key_type=str, partitions=2)
    right = app.topic("right", key_type=str, partitions=2)
    got: list[Any] = []

    @app.agent(left.join(right, **join))
    async def joined(stream):
        async for key, pair in stream.items():
            got.append((key, pair))

    await send_each_committed(app, left, right, sends)
    return got


async def test_buffers_and_stream_time_survive_a_restart(tmp_path):
    """A left record buffered before a graceful stop is joined after the restart, and
    one that never joins comes out when the restored stream time closes it."""
    join = {"within": 10, "how": "left"}
    assert await run_once(tmp_path, "joinrestart",
                          [("L", "a", "A", 100), ("L", "b", "B", 101)], **join) == []
    assert await run_once(tmp_path, "joinrestart", [("R", "a", "a", 105)], **join) == [
        ("a", ("A", "a"))]
    # b (101) closes when the right side passes 111 in b's partition: a record with
    # b's key moves it (a later record of another key may be in another partition)
    assert await run_once(tmp_path, "joinrestart", [("R", "b", "late b", 200)],
                          **join) == [("b", ("B", None))]


async def test_a_key_that_comes_and_goes_between_commits_is_not_written(tmp_path):
    """Buffers only hold records whose window is open: a trip that starts, ends and
    closes between two commits leaves nothing in the join's changelog, while one
    still open at the commit is there (and a restart finds it: see above)."""
    app = streamkit.App("joinfresh", broker="log://", store="rocksdb://",
                        datadir=str(tmp_path), web_enabled=False, commit_interval=60)
    left = app.topic("left", key_type=str, partitions=1)
    right = app.topic("right", key_type=str, partitions=1)
    results = join_agents(app, left, right, within=2)
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        await wait_for(lambda: worker.ready)
        await left.send(key="gone", value="A", timestamp=1)
        await right.send(key="gone", value="a", timestamp=2)
        await left.send(key="open", value="B", timestamp=100)
        meta = await right.send(key="open", value="b", timestamp=100)
        await wait_for(lambda: done_with(app, meta))
        worker.stop()                   # the one commit of this run
    assert results["inner"] == [("A", "a"), ("B", "b")]
    consumer = streamkit.Consumer("joinfresh-j-inner-changelog", broker="log://",
                                  datadir=str(tmp_path), auto_offset_reset="earliest")
    keys = {m.key for messages in consumer.poll(1000).values() for m in messages}
    consumer.close(autocommit=False)
    assert keys == {b"kopen", b"t0", b"t1"}      # str keys are their UTF-8 bytes


async def test_a_record_whose_window_closed_before_it_arrived_is_given_at_once(tmp_path):
    # the right topic is read far ahead of the left one: a left record behind the right
    # side's stream time joins what is buffered and, with no match, comes out at once
    app = make_app("memory", tmp_path)
    left = app.topic("left", key_type=str, partitions=1)
    right = app.topic("right", key_type=str, partitions=1)
    results = join_agents(app, left, right, within=2)
    inputs = [(2, "R", "a"), (100, "R", "z"), (1, "L", "A"), (3, "L", "B"),
              (50, "L", "C")]
    outputs = await play(app, left, right, inputs, results)
    assert [out["left"] for out in outputs] == [
        [], [], [("A", "a")], [("B", "a")], [("C", None)]]
    assert [out["outer"] for out in outputs] == [out["left"] for out in outputs]
    assert [out["inner"] for out in outputs][-1] == []


async def test_a_pair_made_by_a_record_closed_on_arrival_is_remembered_across_a_restart(
        tmp_path):
    """A right record joined by a left record that was not kept (its window had closed
    already) is marked joined in the buffers, so after a restart it does not come out
    of an outer join as unjoined too. (All keys hash to one partition: the stream
    times are per partition.)"""
    join = {"within": 2, "how": "outer"}
    keys = same_partition_keys(3, partitions=2)
    # the right side is read ahead: A (left, at 1) has closed when it arrives
    assert await run_once(tmp_path, "joinmark", [
        ("R", keys[0], "a", 2), ("R", keys[1], "z", 100), ("L", keys[0], "A", 1)],
        **join) == [(keys[0], ("A", "a"))]
    # after the restart the left side moves past a's window: a joined, so only w
    # (closed on arrival itself, with no match) comes out, not (None, a)
    assert await run_once(tmp_path, "joinmark", [("L", keys[2], "w", 50)], **join) == [
        (keys[2], ("w", None))]


def same_partition_keys(n: int, partitions: int) -> list[str]:
    """``n`` string keys that the default partitioner puts in one partition."""
    from streamkit.partitioner import partition_for_key
    keys = (f"k{i}" for i in range(1000))
    return [k for k in keys if partition_for_key(k.encode(), partitions) == 0][:n]


async def test_the_buffers_take_the_partitions_the_topics_have(tmp_path):
    """Topics that exist already keep their partition count whatever the app
    declares; the join's buffers follow the topics, not the declaration."""
    admin = streamkit.Admin(broker="log://", datadir=str(tmp_path))
    for name in ("left", "right"):
        admin.create_topic(name, partitions=1)
    admin.close()
    app = make_app("log", tmp_path)
    left = app.topic("left", key_type=str, partitions=4)
    right = app.topic("right", key_type=str, partitions=4)
    results = join_agents(app, left, right, within=5)
    outputs = await play(app, left, right, [(1, "L", "A"), (2, "R", "a")], results)
    assert outputs[-1]["inner"] == [("A", "a")]
    assert app.tables["j-inner"].partition_count() == 1


async def play_committed(tmp_path: Path, app_id: str,
                         sends: list[tuple[str, str, str, int]], **join: Any
                         ) -> tuple[list[Any], dict[bytes, Any]]:
    """``sends`` through a worker of a one-partition join, each waited for until
    committed; returns the results and the last record of each key of the join's
    changelog (its buffers as msgpack, None for a tombstone)."""
    app = streamkit.App(app_id, broker="log://", store="rocksdb://",
                        datadir=str(tmp_path), web_enabled=False, commit_interval=0.05)
    left = app.topic("left", key_type=str, partitions=1)
    right = app.topic("right", key_type=str, partitions=1)
    got: list[Any] = []

    @app.agent(left.join(right, name="buffers", **join))
    async def joined(stream):
        async for pair in stream:
            got.append(pair)

    await send_each_committed(app, left, right, sends)
    last: dict[bytes, Any] = {}
    consumer = streamkit.Consumer(f"{app_id}-buffers-changelog", broker="log://",
                                  datadir=str(tmp_path), auto_offset_reset="earliest")
    while batch := consumer.poll(200):
        for messages in batch.values():
            for m in messages:
                last[m.key] = None if m.value is None else msgpack.unpackb(m.value)
    consumer.close(autocommit=False)
    return got, last


async def test_a_trip_s_key_leaves_the_buffers_when_its_last_record_closes(tmp_path):
    """A pick-up and its drop-off, then records of another key that close both: the
    trip's key is deleted from the buffers (nothing of it is left behind)."""
    got, last = await play_committed(tmp_path, "jointrip", [
        ("L", "t1", "pickup", 1), ("R", "t1", "dropoff", 2),
        ("L", "other", "A", 100), ("R", "other", "a", 100)], within=2, how="left")
    assert got == [("pickup", "dropoff"), ("A", "a")]
    assert last[b"kt1"] is None                  # written, then a tombstone


async def test_a_busy_key_keeps_only_its_open_records(tmp_path):
    """A key with a pair every 10 s and a 2 s window always has an open record: the
    closed ones must still leave it."""
    sends = []
    for i in range(30):
        sends += [("L", "k", f"L{i}", 10 * i), ("R", "k", f"R{i}", 10 * i + 1)]
    got, last = await play_committed(tmp_path, "joinbusy", sends, within=2, how="left")
    assert got == [(f"L{i}", f"R{i}") for i in range(30)]
    assert [entry[3] for entry in last[b"kk"]] == [b'"L29"', b'"R29"']   # values
