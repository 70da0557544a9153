"""Foreign-key table-table joins (``left.join(global_table, foreign_key=, how=,
name=)``): Kafka Streams' KTable-KTable foreign-key join (KIP-213), on the memory
broker and on ``log://`` with RocksDB stores, in an in-process worker."""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import anyio
import pytest

import streamkit
from streamkit.cli.table_command import read_changelog
from streamkit.errors import ImproperlyConfigured
from streamkit.types import OutgoingRecord, TopicPartition
from streamkit.worker import Worker
from tests.running import committed as committed_records, running

pytestmark = pytest.mark.anyio
_ids = itertools.count()

# Input by input, as Kafka Streams' join tables: trips (the left table, keyed by trip
# id, each value naming a zone) and zones (the right side, a global table keyed by
# zone id); None is a tombstone. After each input, the joined table's changelog
# records of that commit, as {trip: pair, or None for a tombstone}.
L, R = "left", "right"


def trip(zone: str | None, n: int) -> dict[str, Any]:
    return {"zone": zone, "n": n}


UPDATES: list[tuple[str, str, Any]] = [
    (R, "z1", "Z1"),              # 1  no trip refers to z1 yet
    (L, "t1", trip("z1", 1)),     # 2  left update, right present
    (L, "t2", trip("z2", 2)),     # 3  left update, right missing
    (R, "z2", "Z2"),              # 4  right arrives for t2
    (R, "z1", "Z1b"),             # 5  right update reaches t1
    (L, "t2", trip("z1", 3)),     # 6  t2's foreign key changes: z2 -> z1
    (R, "z2", "Z2b"),             # 7  t2's old pairing is gone: nothing
    (R, "z1", "Z1c"),             # 8  one right update, both trips referring to it
    (L, "t1", trip(None, 4)),     # 9  a None foreign key
    (R, "z1", None),              # 10 right delete
    (L, "t2", trip("z2", 5)),     # 11 back to z2
    (L, "t2", None),              # 12 left delete
    (L, "t1", None),              # 13 left delete (t1 has no zone)
    (R, "z2", None),              # 14 no trip refers to z2 any more
]
EXPECTED: dict[str, list[dict[str, Any]]] = {
    "inner": [
        {},
        {"t1": (trip("z1", 1), "Z1")},
        {},
        {"t2": (trip("z2", 2), "Z2")},
        {"t1": (trip("z1", 1), "Z1b")},
        {"t2": (trip("z1", 3), "Z1b")},
        {},
        {"t1": (trip("z1", 1), "Z1c"), "t2": (trip("z1", 3), "Z1c")},
        {"t1": None},
        {"t2": None},
        {"t2": (trip("z2", 5), "Z2b")},
        {"t2": None},
        {},
        {},
    ],
    "left": [
        {},
        {"t1": (trip("z1", 1), "Z1")},
        {"t2": (trip("z2", 2), None)},
        {"t2": (trip("z2", 2), "Z2")},
        {"t1": (trip("z1", 1), "Z1b")},
        {"t2": (trip("z1", 3), "Z1b")},
        {},
        {"t1": (trip("z1", 1), "Z1c"), "t2": (trip("z1", 3), "Z1c")},
        {"t1": (trip(None, 4), None)},
        {"t2": (trip("z1", 3), None)},
        {"t2": (trip("z2", 5), "Z2b")},
        {"t2": None},
        {"t1": None},
        {},
    ],
}


def build(broker: str, tmp_path: Path, how: str, name: str, *,
          commit_interval: float = 0.01) -> tuple[streamkit.App, Any, Any]:
    """An app whose agent applies ``{"side", "value"}`` updates to trips and zones
    (a global table with 3 partitions), and their foreign-key join."""
    app = streamkit.App(name, broker=broker, datadir=str(tmp_path),
                        store="memory://" if broker.startswith("memory") else "rocksdb://",
                        web_enabled=False, commit_interval=commit_interval,
                        topic_partitions=1)
    updates = app.topic("updates", partitions=1)
    trips = app.Table("trips")
    zones = app.GlobalTable("zones", partitions=3)
    joined = trips.join(zones, foreign_key=lambda v: v["zone"], how=how,
                        name="trip_zone")

    @app.agent(updates)
    async def apply(stream: Any) -> None:
        async for key, update in stream.items():
            table = trips if update["side"] == L else zones
            if update["value"] is None:
                table.pop(key, None)
            else:
                table[key] = update["value"]
    return app, updates, joined


async def committed(worker: Worker, events: int) -> None:
    """Wait until the worker has committed the first ``events`` updates."""
    await committed_records(worker, TopicPartition("updates", 0), events)


class Changelog:
    """Reads the joined table's changelog from where it was last read."""

    def __init__(self, app: streamkit.App, joined: Any) -> None:
        self.app = app
        self.joined = joined
        self.position = 0

    def new(self) -> dict[Any, Any]:
        tp = TopicPartition(self.joined.changelog_topic, 0)
        records = list(self.app.broker.fetch(tp, self.position, 1000))
        self.position += len(records)
        got: dict[Any, Any] = {}
        for record in records:
            key = self.joined.load_key(record.key)
            assert key not in got, ("two records of one key in one commit", records)
            got[key] = None if record.value is None \
                else self.joined.value_serde.loads(record.value)
        return got


def brokers(tmp_path: Path) -> dict[str, str]:
    return {"memory": f"memory://fk{next(_ids)}", "log": f"log://{tmp_path}/log"}


async def play(worker: Worker, updates: Any, log: Changelog,
               steps: list[tuple[str, str, Any]], done: int = 0) -> list[dict[str, Any]]:
    """Send each update, wait for its commit, and collect what the join wrote."""
    got = []
    for i, (side, key, value) in enumerate(steps):
        await updates.send(key=key, value={"side": side, "value": value})
        await committed(worker, done + i + 1)
        got.append(log.new())
    return got


@pytest.mark.parametrize("how", ["inner", "left"])
@pytest.mark.parametrize("kind", ["memory", "log"])
async def test_the_foreign_key_join_table_input_by_input(tmp_path: Path, how: str,
                                                         kind: str) -> None:
    app, updates, joined = build(brokers(tmp_path)[kind], tmp_path, how, f"fk{how}{kind}")
    log = Changelog(app, joined)
    async with running(app) as worker:
        got = await play(worker, updates, log, UPDATES[:8])
        # reads join the current values, in the worker
        assert joined["t2"] == (trip("z1", 3), "Z1c")
        assert dict(joined.items()) == {"t1": (trip("z1", 1), "Z1c"),
                                        "t2": (trip("z1", 3), "Z1c")}
        got += await play(worker, updates, log, UPDATES[8:], done=8)
        assert joined.get("t1") is None and "t2" not in joined
        # the worker follows its own writes to the global table too: those never
        # give a second record
        await anyio.sleep(0.2)
        assert log.new() == {}
        assert dict(joined.items()) == {}
    assert got == EXPECTED[how]


async def test_a_restart_restores_the_join_and_its_reverse_index(tmp_path: Path) -> None:
    broker, name = f"log://{tmp_path}/log", f"fkrestart{next(_ids)}"
    app, updates, joined = build(broker, tmp_path, "inner", name)
    log = Changelog(app, joined)
    async with running(app) as worker:
        await play(worker, updates, log, UPDATES[:6])
    before = {"t1": (trip("z1", 1), "Z1b"), "t2": (trip("z1", 3), "Z1b")}

    # another writer changes z2 while the worker is down: no trip refers to it
    zones = app.tables["zones"]
    app.broker.produce(zones.changelog_topic, [OutgoingRecord(
        b'"z2"', b'"Z2-offline"', partition=zones._partition_of_key("z2"))])

    app, updates, joined = build(broker, tmp_path, "inner", name)
    log = Changelog(app, joined)
    log.position = app.broker.offsets(TopicPartition(joined.changelog_topic, 0))[1]
    async with running(app) as worker:
        assert dict(joined.items()) == before
        assert joined["t1"] == before["t1"]
        # the index came back: one right update reaches both trips referring to z1
        await updates.send(key="z1", value={"side": R, "value": "Z1-after"})
        await committed(worker, 7)
        assert log.new() == {"t1": (trip("z1", 1), "Z1-after"),
                             "t2": (trip("z1", 3), "Z1-after")}
        # and t2's move to z2 finds the value written while the worker was down
        await updates.send(key="t2", value={"side": L, "value": trip("z2", 9)})
        await committed(worker, 8)
        assert log.new() == {"t2": (trip("z2", 9), "Z2-offline")}


async def test_a_right_change_made_while_down_reaches_the_join_at_restart(
        tmp_path: Path) -> None:
    broker, name = f"log://{tmp_path}/log", f"fkdown{next(_ids)}"
    app, updates, joined = build(broker, tmp_path, "left", name)
    log = Changelog(app, joined)
    async with running(app) as worker:
        await play(worker, updates, log, UPDATES[:3])
    # another worker (another app instance) deletes z1 and adds z2 while this one is
    # down: t1 and t2 refer to them
    zones = app.tables["zones"]
    app.broker.produce(zones.changelog_topic, [
        OutgoingRecord(b'"z1"', None, partition=zones._partition_of_key("z1")),
        OutgoingRecord(b'"z2"', b'"Z2"', partition=zones._partition_of_key("z2"))])

    app, updates, joined = build(broker, tmp_path, "left", name)
    log = Changelog(app, joined)
    log.position = app.broker.offsets(TopicPartition(joined.changelog_topic, 0))[1]
    expected = {"t1": (trip("z1", 1), None), "t2": (trip("z2", 2), "Z2")}
    async with running(app):
        # joined again when the partition is assigned, written at the next commit
        got: dict[str, Any] = {}
        with anyio.fail_after(5):
            while len(got) < 2:
                await anyio.sleep(0.02)
                got.update(log.new())
        assert got == expected
        assert dict(joined.items()) == expected


@pytest.mark.parametrize("kind", ["memory", "log"])
async def test_a_right_change_by_another_writer_reaches_a_running_worker(
        tmp_path: Path, kind: str) -> None:
    app, updates, joined = build(brokers(tmp_path)[kind], tmp_path, "inner",
                                 f"fkfollow{kind}")
    log = Changelog(app, joined)
    async with running(app) as worker:
        await play(worker, updates, log, UPDATES[:2])
        zones = app.tables["zones"]
        # what another worker's commit writes: the global table's changelog
        app.broker.produce(zones.changelog_topic, [OutgoingRecord(
            b'"z1"', b'"Z1-elsewhere"', partition=zones._partition_of_key("z1"))])
        with anyio.fail_after(5):
            while joined.get("t1") != (trip("z1", 1), "Z1-elsewhere"):
                await anyio.sleep(0.01)   # read now: from the followed global table
            got: dict[str, Any] = {}
            while not got:
                await anyio.sleep(0.02)   # written at a commit of its own
                got = log.new()
        assert got == {"t1": (trip("z1", 1), "Z1-elsewhere")}


def test_only_a_global_table_can_be_the_right_side() -> None:
    app = streamkit.App("fkargs", broker="memory://fkargs", store="memory://")
    trips, zones = app.Table("trips"), app.GlobalTable("zones")
    partitioned = app.Table("zones_by_id")
    with pytest.raises(ImproperlyConfigured) as failure:
        trips.join(partitioned, foreign_key=lambda v: v["zone"], name="tz")
    assert str(failure.value) == (
        "foreign-key join 'tz': 'zones_by_id' is a partitioned table; the right side of "
        "a foreign-key join must be an app.GlobalTable (every worker holds it whole), "
        "see docs/joins.md")
    with pytest.raises(ImproperlyConfigured, match="how='outer' must be 'inner' or 'left'"):
        trips.join(zones, foreign_key=lambda v: v["zone"], how="outer", name="tz")
    with pytest.raises(ImproperlyConfigured, match="foreign_key='zone' must be a callable"):
        trips.join(zones, foreign_key="zone", name="tz")  # type: ignore[arg-type]
    with pytest.raises(ImproperlyConfigured, match="'zones' is a global table"):
        zones.join(trips, foreign_key=lambda v: v, name="tz")
    assert "tz" not in app.tables
    joined = trips.join(zones, foreign_key=lambda v: v["zone"], how="left", name="tz")
    assert app.tables["tz"] is joined
    with pytest.raises(TypeError, match="'tz' is the left join of 'trips' and 'zones': "
                                        "it is read-only"):
        joined["t1"] = ({}, None)


async def test_a_failing_foreign_key_stops_the_worker_naming_the_key(
        tmp_path: Path) -> None:
    app, updates, _ = build(f"memory://fk{next(_ids)}", tmp_path, "inner", "fkfail")
    worker = Worker(app, install_signal_handlers=False)
    with pytest.raises(BaseExceptionGroup) as failure:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.run_async)
                await updates.send(key="t9", value={"side": L, "value": {"n": 1}})
    assert failure.group_contains(
        ValueError, match=r"^foreign-key join 'trip_zone': foreign_key failed on "
                          r"trips\['t9'\] = \{'n': 1\}: KeyError\('zone'\)$")
    # nothing of the failed commit was acknowledged: the update is processed again
    assert worker.committer.committed.get(TopicPartition("updates", 0), 0) == 0


def test_a_joined_value_is_a_json_pair() -> None:
    app = streamkit.App("fkpair", broker="memory://fkpair", store="memory://")
    joined = app.Table("trips").join(app.GlobalTable("zones"), how="left",
                                     foreign_key=lambda v: v["zone"], name="tz")
    raw = joined.value_serde.dumps((trip("z1", 1), "Z1"))
    assert json.loads(raw) == [{"zone": "z1", "n": 1}, "Z1"]
    assert joined.value_serde.dumps((trip(None, 1), None)) == b'[{"zone":null,"n":1},null]'


async def test_changes_and_the_table_command_read_the_join(tmp_path: Path) -> None:
    app, updates, joined = build(f"log://{tmp_path}/log", tmp_path, "inner",
                                 f"fkchanges{next(_ids)}")
    seen: list[tuple[Any, Any]] = []

    @app.agent(joined.changes())
    async def watch(stream: Any) -> None:
        async for key, pair in stream.items():
            seen.append((key, pair))

    async with running(app) as worker:
        await play(worker, updates, Changelog(app, joined), UPDATES[:10])
        with anyio.fail_after(5):
            while len(seen) < 8:
                await anyio.sleep(0.01)
    # one event per change, in order, tombstones included (steps 2, 4-6, 8 twice, 9, 10)
    # (the two keys of step 8 come in one commit, in no given order)
    seen[4:6] = sorted(seen[4:6], key=lambda event: event[0])
    assert seen == [("t1", (trip("z1", 1), "Z1")), ("t2", (trip("z2", 2), "Z2")),
                    ("t1", (trip("z1", 1), "Z1b")), ("t2", (trip("z1", 3), "Z1b")),
                    ("t1", (trip("z1", 1), "Z1c")), ("t2", (trip("z1", 3), "Z1c")),
                    ("t1", None), ("t2", None)]
    # ``streamkit table`` reads the changelog: the join as committed
    assert read_changelog(app.broker, joined) == {}


async def test_a_right_update_reaches_left_keys_in_every_partition(tmp_path: Path
                                                                   ) -> None:
    app = streamkit.App(f"fkparts{next(_ids)}", broker=f"memory://fk{next(_ids)}",
                        store="memory://", web_enabled=False, commit_interval=0.01,
                        topic_partitions=4)
    trips_topic = app.topic("trips")
    trips = app.Table("trips")
    zones = app.GlobalTable("zones")
    joined = trips.join(zones, foreign_key=lambda v: v["zone"], how="left",
                        name="trip_zone")

    @app.agent(trips_topic)
    async def load(stream: Any) -> None:
        async for key, value in stream.items():
            if key.startswith("z"):
                zones[key] = value
            else:
                trips[key] = value

    keys = [f"t{i}" for i in range(12)]
    async with running(app):
        for key in keys:
            await trips_topic.send(key=key, value=trip("z1", 1))
        await trips_topic.send(key="z1", value="Zone one")
        with anyio.fail_after(5):
            while read_changelog(app.broker, joined) != {
                    key: (trip("z1", 1), "Zone one") for key in keys}:
                await anyio.sleep(0.02)
    partitions = {trips._partition_of_key(key) for key in keys}
    assert len(partitions) > 1      # the trips are spread over the partitions
