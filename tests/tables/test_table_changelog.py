"""What a commit writes: each changed key's last value, in the bytes of the table's
codec, in the changelog and the store; deleted keys as tombstones. A table of plain
ints is encoded in bulk, a mixed one key by key: both must give the codec's bytes
(bools are not ints, big and negative ints are ints), and a restart the same table."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import anyio
import pytest

import streamkit
from streamkit.types import TopicPartition
from streamkit.worker import Worker
from tests.running import running

pytestmark = pytest.mark.anyio
_ids = itertools.count()

#: (table, key, value); None deletes the key. Each table's keys in one partition.
OPS: list[tuple[str, Any, Any]] = [
    ("ints", 3, 1), ("ints", -7, 2), ("ints", 2**70, -(2**65)), ("ints", 3, 4),
    ("ints", 12, 5), ("ints", 12, None),
    ("mixed", True, False), ("mixed", "x", [1, "y"]), ("mixed", 2.5, 2**70),
    ("mixed", 9, 1.5), ("mixed", "gone", 1), ("mixed", "gone", None),
    # int keys, values the JSON codec writes its own way (1e+16, not 1e16)
    ("floats", 1, 1e16), ("floats", 2, 1e-7), ("floats", 3, 2),
]


def build(name: str, tmp: Path, store: str) -> tuple[Any, Any, dict[str, Any]]:
    broker = f"log://{tmp}/log" if store == "rocksdb://" else f"memory://{name}"
    app = streamkit.App(name, broker=broker, store=store, datadir=str(tmp),
                        web_enabled=False, commit_interval=60.0, topic_partitions=1)
    ops = app.topic("ops", partitions=1)
    tables = {n: app.Table(n) for n in ("ints", "mixed", "floats")}
    state = {"seen": 0}

    @app.agent(ops)
    async def apply(stream):
        async for op in stream:
            table = tables[op["table"]]
            key = decode_key(op["key"]) if op["table"] == "mixed" else op["key"]
            if op["value"] is None:
                del table[key]
            else:
                table[key] = op["value"]
            state["seen"] += 1
    return app, ops, {"tables": tables, "state": state}


def decode_key(key: Any) -> Any:
    # JSON has no bool/float keys of its own here: they travel tagged
    return {"true": True, "2.5": 2.5}.get(key, key) if isinstance(key, str) else key


def encode_key(key: Any) -> Any:
    return {True: "true", 2.5: "2.5"}.get(key, key) if key is True or key == 2.5 else key


def expected() -> dict[str, dict[Any, Any]]:
    tables: dict[str, dict[Any, Any]] = {"ints": {}, "mixed": {}, "floats": {}}
    for table, key, value in OPS:
        if value is None:
            tables[table].pop(key, None)
        else:
            tables[table][key] = value
    return tables


@pytest.mark.parametrize("store", ["rocksdb://", "memory://"])
async def test_a_commit_writes_the_codec_bytes_of_each_last_value(
        tmp_path: Path, store: str) -> None:
    name = f"changelogbytes{next(_ids)}"
    app, ops, parts = build(name, tmp_path, store)
    for table, key, value in OPS:
        await ops.send(value={"table": table, "key": encode_key(key), "value": value})
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(10):
            while parts["state"]["seen"] < len(OPS):
                await anyio.sleep(0.01)
        worker.commit()
        worker.stop()
    json = streamkit.codecs.get("json")
    want = expected()
    for name_, table in parts["tables"].items():
        last: dict[bytes, bytes | None] = {}
        tp = TopicPartition(table.changelog_topic, 0)
        for message in app.broker.fetch(tp, 0, 1000):
            last[message.key] = message.value
        gone = {json.dumps(k) for t, k, v in OPS if t == name_ and k not in want[name_]}
        assert last == {**{json.dumps(k): json.dumps(v) for k, v in want[name_].items()},
                        **dict.fromkeys(gone)}
    # a new worker of the same app: from the store (RocksDB) or the changelog (memory)
    again, _, parts2 = build(name, tmp_path, store)
    async with running(again):
        tables = {n: dict(t.items()) for n, t in parts2["tables"].items()}
    assert tables == want


async def test_a_timer_writes_where_the_key_hashes_and_reads_what_agents_wrote(
        tmp_path: Path) -> None:
    """Outside an agent's stream there is no event partition: a new key goes to the
    partition it hashes to, a key an agent wrote is found in the agent's partition;
    also right after a commit, before any event (when the table has no current batch
    of its own)."""
    name = f"timerwrites{next(_ids)}"
    app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                        datadir=str(tmp_path), web_enabled=False, commit_interval=60.0,
                        topic_partitions=4)
    events = app.topic("events", partitions=4)
    counts = app.Table("counts", default=int)
    seen: list[Any] = []
    go = anyio.Event()

    @app.agent(events)
    async def count(stream):
        async for value in stream:
            counts[value] += 1
            seen.append(value)

    @app.timer(0.02)
    async def tick():
        if go.is_set() and "timer" not in seen:
            counts["timer"] += 1                  # a key no agent wrote
            counts["agent"] += 10                 # a key the agent wrote, partition 2
            seen.append("timer")

    await events.send(value="agent", partition=2)
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(10):
            while not seen:
                await anyio.sleep(0.01)
            worker.commit()
            go.set()
            while "timer" not in seen:
                await anyio.sleep(0.01)
        worker.commit()
        worker.stop()
    records = {}
    for partition in range(4):
        tp = TopicPartition(counts.changelog_topic, partition)
        for message in app.broker.fetch(tp, 0, 100):
            records[message.key] = (partition, message.value)
    json = streamkit.codecs.get("json")
    hashed = counts._partition_of_key("timer")
    assert records == {json.dumps("agent"): (2, b"11"),
                       json.dumps("timer"): (hashed, b"1")}
