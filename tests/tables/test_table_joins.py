"""Table-table joins (``left.join(right, how=, name=)``): Kafka Streams' KTable-KTable
join, on the memory broker and on ``log://`` with RocksDB stores, in an in-process
worker."""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import anyio
import pytest

import streamkit
from streamkit.cli.main import one_line
from streamkit.errors import ImproperlyConfigured
from streamkit.types import TopicPartition
from streamkit.worker import Worker
from tests.running import committed as committed_records, running

pytestmark = pytest.mark.anyio
_ids = itertools.count()

# The KTable-KTable join table of the Apache Kafka wiki page "Kafka Streams Join
# Semantics" (v0.10.2 and newer, record cache off): one key, the left and right
# tables' updates at timestamps 1..15 (None: a tombstone), and the joined table's
# output after each ("-": nothing; None: a tombstone).
L, R = "left", "right"
UPDATES: list[tuple[int, str, str | None]] = [
    (1, L, None), (2, R, None), (3, L, "A"), (4, R, "a"), (5, L, "B"), (6, R, "b"),
    (7, L, None), (8, R, None), (9, L, "C"), (10, R, "c"), (11, R, None), (12, L, None),
    (13, R, None), (14, R, "d"), (15, L, "D"),
]
NO = "-"
EXPECTED: dict[str, list[Any]] = {
    "inner": [NO, NO, NO, ("A", "a"), ("B", "a"), ("B", "b"), None, NO, NO, ("C", "c"),
              None, NO, NO, NO, ("D", "d")],
    "left": [NO, NO, ("A", None), ("A", "a"), ("B", "a"), ("B", "b"), None, NO,
             ("C", None), ("C", "c"), ("C", None), None, NO, NO, ("D", "d")],
    "outer": [NO, NO, ("A", None), ("A", "a"), ("B", "a"), ("B", "b"), (None, "b"), None,
              ("C", None), ("C", "c"), ("C", None), None, NO, (None, "d"), ("D", "d")],
}


def build(broker: str, tmp_path: Path, how: str, name: str, *,
          right_partitions: int = 1, commit_interval: float = 0.01
          ) -> tuple[streamkit.App, Any, Any]:
    """An app whose agent applies ``{"side", "value"}`` updates to two tables, and
    their ``how`` join."""
    app = streamkit.App(name, broker=broker, datadir=str(tmp_path),
                        store="memory://" if broker.startswith("memory") else "rocksdb://",
                        web_enabled=False, commit_interval=commit_interval, topic_partitions=1)
    updates = app.topic("updates", partitions=1)
    left = app.Table("left")
    right = app.Table("right", partitions=right_partitions)
    joined = left.join(right, how=how, name="joined")

    @app.agent(updates)
    async def apply(stream: Any) -> None:
        async for key, update in stream.items():
            table = left if update["side"] == L else right
            if update["value"] is None:
                table.pop(key, None)
            else:
                table[key] = update["value"]
    return app, updates, joined


async def committed(worker: Worker, events: int) -> None:
    """Wait until the worker has committed the first ``events`` updates."""
    await committed_records(worker, TopicPartition("updates", 0), events)


def new_records(app: streamkit.App, topic: str, start: int) -> list[Any]:
    tp = TopicPartition(topic, 0)
    return list(app.broker.fetch(tp, start, 1000))


def brokers(tmp_path: Path) -> list[str]:
    return [f"memory://tt{next(_ids)}", f"log://{tmp_path}/log"]


@pytest.mark.parametrize("how", ["inner", "left", "outer"])
@pytest.mark.parametrize("kind", ["memory", "log"])
async def test_the_join_table_of_kafka_streams_docs(tmp_path: Path, how: str, kind: str
                                                    ) -> None:
    broker = brokers(tmp_path)[0 if kind == "memory" else 1]
    app, updates, joined = build(broker, tmp_path, how, f"tt{how}{next(_ids)}")
    got: list[Any] = []
    async with running(app) as worker:
        position = 0
        current = None
        for i, (ts, side, value) in enumerate(UPDATES):
            await updates.send(key="k", value={"side": side, "value": value},
                               timestamp=float(ts))
            await committed(worker, i + 1)
            records = new_records(app, joined.changelog_topic, position)
            position += len(records)
            assert len(records) <= 1, (ts, records)
            got.append(joined.value_serde.loads(records[0].value) if records else NO)
            if records:
                current = got[-1]
            # reading a key gives the join's value now (None: not in the join)
            assert joined.get("k") == current
        assert dict(joined.items()) == {"k": ("D", "d")}
    assert got == EXPECTED[how]


def build_watched(broker: str, tmp_path: Path, name: str
                  ) -> tuple[streamkit.App, Any, Any, list[tuple[Any, Any]]]:
    """``build``'s inner join, and an agent that collects ``joined.changes()``."""
    app, updates, joined = build(broker, tmp_path, "inner", name)
    seen: list[tuple[Any, Any]] = []

    @app.agent(joined.changes())
    async def watch(stream: Any) -> None:
        async for key, pair in stream.items():
            seen.append((key, pair))
    return app, updates, joined, seen


async def seen_at_least(seen: list[Any], count: int) -> None:
    with anyio.fail_after(5):
        while len(seen) < count:
            await anyio.sleep(0.01)


async def test_changes_stream_includes_tombstones_and_a_restart_restores(
        tmp_path: Path) -> None:
    name = f"ttchanges{next(_ids)}"
    broker = f"log://{tmp_path}/log"
    app, updates, joined, seen = build_watched(broker, tmp_path, name)
    async with running(app) as worker:
        for i, (side, value) in enumerate([(L, 1), (R, 2.5), (L, None)]):
            await updates.send(key="132", value={"side": side, "value": value})
            await committed(worker, i + 1)
        await updates.send(key="7", value={"side": L, "value": 3})
        await updates.send(key="7", value={"side": R, "value": 4.0})
        await committed(worker, 5)
        await seen_at_least(seen, 3)
    assert seen == [("132", (1, 2.5)), ("132", None), ("7", (3, 4.0))]
    assert joined.changelog_topic == f"{name}-joined-changelog"

    # a new worker: the joined table restored from its changelog, and the agent on
    # its changes goes on from its committed offset (nothing seen twice)
    app, updates, joined, seen = build_watched(broker, tmp_path, name)
    async with running(app) as worker:
        assert dict(joined.items()) == {"7": (3, 4.0)}
        assert joined["7"] == (3, 4.0)
        assert "132" not in joined
        await updates.send(key="7", value={"side": R, "value": None})
        await committed(worker, 6)
        await seen_at_least(seen, 1)
        await anyio.sleep(0.1)
        assert dict(joined.items()) == {}
    assert seen == [("7", None)]


async def test_a_joined_table_is_read_only(tmp_path: Path) -> None:
    _, _, joined = build(f"memory://tt{next(_ids)}", tmp_path, "left", "ttro")
    with pytest.raises(TypeError, match="'joined' is the left join of 'left' and "
                                        "'right': it is read-only"):
        joined["k"] = (1, 2)
    with pytest.raises(TypeError, match="read-only"):
        joined.update({"k": (1, 2)})
    with pytest.raises(KeyError):
        joined["k"]
    assert joined.get("k") is None


async def test_tables_not_co_partitioned_stop_the_worker_with_one_line(
        tmp_path: Path) -> None:
    app, _, _ = build(f"memory://tt{next(_ids)}", tmp_path, "inner", "ttcopart",
                      right_partitions=2)
    worker = Worker(app, install_signal_handlers=False)
    with pytest.raises(BaseExceptionGroup) as failure:
        await worker.run_async()
    # what ``python app.py worker`` prints: the error, one line
    assert failure.group_contains(ImproperlyConfigured)
    assert one_line(failure.value) == (
        "table join 'joined': 'left' has 1 partitions and 'right' has 2; a table-table "
        "join needs co-partitioned tables: give both the same partitions=")


def test_join_arguments_are_checked() -> None:
    app = streamkit.App("ttargs", broker="memory://ttargs", store="memory://")
    left, right = app.Table("a"), app.Table("b")
    with pytest.raises(ImproperlyConfigured, match="how='cross' must be one of"):
        left.join(right, how="cross", name="ab")
    with pytest.raises(ImproperlyConfigured, match="WindowWrapper w .* is not a table"):
        left.join(app.Table("w").tumbling(10), name="aw")
    with pytest.raises(ImproperlyConfigured, match="'w' is a windowed table"):
        left.join(app.tables["w"], name="aw")
    assert "ab" not in app.tables
    joined = left.join(right, how="outer", name="ab")
    assert app.tables["ab"] is joined


async def test_reading_a_key_outside_an_event_finds_its_partition() -> None:
    # agent.test_context() puts events in partition 0, where "x" does not hash to
    app = streamkit.App("ttctx", broker="memory://ttctx", store="memory://",
                        web_enabled=False, topic_partitions=8)
    topic = app.topic("t")
    counts, fares = app.Table("counts", default=int), app.Table("fares", default=float)
    joined = counts.join(fares, how="outer", name="summary")

    @app.agent(topic)
    async def tally(stream: Any) -> None:
        async for key, value in stream.items():
            counts[key] += value

    async with tally.test_context() as ctx:
        await ctx.put(3, key="x")
        assert (joined.get("x"), joined["x"], "x" in joined) == ((3, None), (3, None),
                                                                 True)
        assert "y" not in joined


class Zone(streamkit.Record, serializer="json"):
    borough: str
    name: str


def test_a_joined_value_is_a_json_pair_of_the_sides_own_values() -> None:
    app = streamkit.App("ttpair", broker="memory://ttpair", store="memory://")
    counts = app.Table("counts", default=int)
    zones = app.Table("zones", value_type=Zone)
    joined = counts.join(zones, how="outer", name="counted_zones")
    zone = Zone(borough="Queens", name="JFK Airport")
    raw = joined.value_serde.dumps((5, zone))
    assert json.loads(raw) == [5, {"borough": "Queens", "name": "JFK Airport"}]
    assert joined.value_serde.loads(raw) == (5, zone)
    assert type(joined.value_serde.loads(raw)[1]) is Zone
    assert joined.value_serde.loads(joined.value_serde.dumps((None, zone))) == (None, zone)
    assert joined.value_serde.dumps((5, None)) == b"[5,null]"
    msgpacked = app.Table("packed", value_serializer="msgpack")
    with pytest.raises(ImproperlyConfigured, match="'packed' encodes its values with "
                                                   "'msgpack'; joined tables need JSON"):
        counts.join(msgpacked, name="cp")


async def test_changes_between_two_commits_give_one_update(tmp_path: Path) -> None:
    # commits only when the worker stops: the key's three changes come out as one
    app, updates, joined = build(f"memory://tt{next(_ids)}", tmp_path, "inner",
                                 "ttonce", commit_interval=60.0)
    async with running(app) as worker:
        for side, value in [(L, 1), (R, 5), (L, 2)]:
            await updates.send(key="k", value={"side": side, "value": value})
        with anyio.fail_after(5):
            while joined.get("k") != (2, 5):      # read now, from both tables
                await anyio.sleep(0.01)
        assert new_records(app, joined.changelog_topic, 0) == []
        assert list(joined.items()) == []        # as of the last commit: none yet
    records = new_records(app, joined.changelog_topic, 0)
    assert [joined.value_serde.loads(r.value) for r in records] == [(2, 5)]
    assert worker.committer.committed[TopicPartition("updates", 0)] == 3
