"""``app.SetTable`` / ``app.SetGlobalTable`` (Faust's tables of sets): every change made
through ``table[key]`` reaches the changelog and the store, and a restarted worker has
the same sets; ``Table.as_ansitable()`` draws a table as Faust's does."""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

import streamkit
from streamkit.errors import ImproperlyConfigured
from streamkit.types import TopicPartition
from tests.running import run_until

pytestmark = pytest.mark.anyio
_ids = itertools.count()

#: (operation, key, argument), applied by the agent in order
OPS: list[tuple[str, str, Any]] = [
    ("add", "a", 1), ("add", "a", 2), ("add", "a", 2), ("update", "a", [3, 4]),
    ("discard", "a", 1), ("discard", "a", 99),
    ("update", "b", ["x", "y", "z"]), ("difference_update", "b", ["x"]),
    ("intersection_update", "b", ["y", "q"]), ("symmetric_difference_update", "b", ["y", "w"]),
    ("add", "c", [5, "t"]),                  # a tuple element (JSON gives it back as one)
    ("add", "gone", 1), ("clear", "gone", None),
    ("ior", "d", [7, 8]), ("remove", "d", 7),
]


def expected() -> dict[str, set[Any]]:
    sets: dict[str, set[Any]] = {}
    for op, key, arg in OPS:
        target = sets.setdefault(key, set())
        apply(target, op, arg)
    return {key: value for key, value in sets.items() if value}


def apply(target: Any, op: str, arg: Any) -> Any:
    if op in ("add", "discard", "remove"):
        getattr(target, op)(tuple(arg) if isinstance(arg, list) and op == "add" else arg)
    elif op == "clear":
        target.clear()
    elif op == "ior":
        target |= set(arg)
    else:
        getattr(target, op)(arg)
    return target


def build(name: str, tmp: Path, *, global_: bool = False) -> tuple[Any, Any, Any, dict]:
    app = streamkit.App(name, broker=f"log://{tmp}/log", store="rocksdb://",
                        datadir=str(tmp), web_enabled=False, commit_interval=60.0,
                        topic_partitions=1)
    ops = app.topic("ops", partitions=1)
    sets = (app.SetGlobalTable if global_ else app.SetTable)("members")
    state = {"seen": 0}

    @app.agent(ops)
    async def change(stream):
        async for op in stream:
            if op["op"] == "ior":
                sets[op["key"]] |= set(op["arg"])
            else:
                apply(sets[op["key"]], op["op"], op["arg"])
            state["seen"] += 1
    return app, ops, sets, state


@pytest.mark.parametrize("global_", [False, True], ids=["SetTable", "SetGlobalTable"])
async def test_set_changes_reach_the_changelog_and_survive_a_restart(
        tmp_path: Path, global_: bool) -> None:
    name = f"sets{next(_ids)}"
    app, ops, sets, state = build(name, tmp_path, global_=global_)
    for op, key, arg in OPS:
        await ops.send(value={"op": op, "key": key, "arg": arg})
    await run_until(app, lambda: state["seen"] == len(OPS), within=10)
    want = expected()
    assert want == {"a": {2, 3, 4}, "b": {"w"}, "c": {(5, "t")}, "d": {8}}

    # the changelog holds each key's last set (a list), the emptied key a tombstone
    broker = app.broker
    records = broker.fetch(TopicPartition(sets.changelog_topic, 0), 0, 1000)
    last = {json.loads(m.key): m.value for m in records}
    assert last.pop("gone") is None
    assert {k: {tuple(e) if isinstance(e, list) else e for e in json.loads(v)}
            for k, v in last.items()} == want

    # a new worker (new App, same data dir) has the same sets, from its store
    again, _, sets2, _ = build(name, tmp_path, global_=global_)
    seen: dict[str, Any] = {}

    @again.task
    async def read_back() -> None:
        seen.update(sets2.items())
    await run_until(again, lambda: bool(seen), within=10)
    assert seen == want
    assert "gone" not in sets2


async def test_table_key_is_a_set_that_writes_through() -> None:
    app = streamkit.App(f"setsctx{next(_ids)}", broker="memory://", store="memory://",
                        web_enabled=False)
    sets = app.SetTable("tags")

    @app.agent(app.topic("tags"))
    async def tag(stream):
        async for event in stream.events():
            sets[event.key].add(event.value)

    async with tag.test_context() as ctx:
        await ctx.put("red", key="k1")
        await ctx.put("blue", key="k1")
        await ctx.put("red", key="k2")
        assert sets["k1"] == {"red", "blue"} and len(sets["k1"]) == 2
        assert "red" in sets["k2"] and sets["k1"] | {"x"} == {"red", "blue", "x"}
        assert type(sets["k1"] | {"x"}) is set
        assert sets["nothing"] == set() and "nothing" not in sets
        assert dict(sets.items()) == {"k1": {"red", "blue"}, "k2": {"red"}}


def test_set_tables_refuse_what_they_do_not_provide() -> None:
    app = streamkit.App(f"setsno{next(_ids)}", broker="memory://", store="memory://")
    with pytest.raises(ImproperlyConfigured, match="windowed set tables"):
        app.SetTable("w").tumbling(60)
    with pytest.raises(ImproperlyConfigured, match="start_manager"):
        app.SetTable("m", start_manager=True)


async def test_as_ansitable_draws_the_table_like_faust() -> None:
    app = streamkit.App(f"ansi{next(_ids)}", broker="memory://", store="memory://",
                        web_enabled=False)
    counts = app.Table("vendor_rides", default=int)

    @app.agent(app.topic("rides"))
    async def count(stream):
        async for event in stream.events():
            counts[event.key] += event.value

    async with count.test_context() as ctx:
        for key, value in (("b", 2), ("a", 10), ("c", 1)):
            await ctx.put(value, key=key)
        text = counts.as_ansitable(sort=True)
        assert text.splitlines() == [
            "Vendor Rides",
            "┌─────┬───────┐",
            "│ Key │ Value │",
            "├─────┼───────┤",
            "│ a   │ 10    │",
            "│ b   │ 2     │",
            "│ c   │ 1     │",
            "└─────┴───────┘"]
        by_count = counts.as_ansitable(title="{table.name} by count", key="vendor",
                                       value="rides", sort=True,
                                       sortkey=lambda item: -item[1])
        assert by_count.splitlines()[0] == "Vendor Rides By Count"
        assert by_count.splitlines()[2] == "│ Vendor │ Rides │"
        assert [line.split()[1] for line in by_count.splitlines()[4:7]] == ["a", "b", "c"]
