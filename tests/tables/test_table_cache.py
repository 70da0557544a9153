"""A table's bounded cache: many more keys than it holds, counted right across commits
and restarts, with changed keys never dropped before their commit (RocksDB on the
embedded log, and the memory store rebuilt from its changelog)."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import anyio
import pytest

import streamkit
from streamkit.errors import ImproperlyConfigured
from streamkit.tables.cache import trim
from streamkit.worker import Worker

pytestmark = pytest.mark.anyio
_ids = itertools.count()

CACHE = 40
#: max_poll_records, bigger than the cache: one poll changes more keys than it holds
POLL = 150


def build(name: str, tmp: Path, stores: str, cache: int = CACHE, kafka: str | None = None
          ) -> tuple[Any, Any, Any, dict[str, Any]]:
    """An app counting values per key in a table of ``cache`` keys; commits only when
    the table asks for one (or at the end): the interval is a minute. On ``kafka``
    (a kafka:// URL) under exactly_once."""
    broker = kafka or (f"log://{tmp}/log" if stores == "rocksdb://" else f"memory://{name}")
    options: dict[str, Any] = {} if kafka is None else {
        "processing_guarantee": "exactly_once", "session_timeout": 3.0,
        "broker_config": {"consumer": {"partition.assignment.strategy": "range"}}}
    app = streamkit.App(name, broker=broker, store=stores, datadir=str(tmp),
                        web_enabled=False, commit_interval=60.0, topic_partitions=2,
                        max_poll_records=POLL, table_cache_size=cache, **options)
    source = app.topic("numbers", key_type=int, value_type=int, partitions=2)
    counts = app.Table("counts", default=int)
    state: dict[str, Any] = {"seen": 0, "most_cached": 0}

    @app.agent(source)
    async def count(stream):
        async for number in stream:
            counts[number] += 1
            state["seen"] += 1
            state["most_cached"] = max(state["most_cached"], counts.cached())
    return app, source, counts, state


async def send(source: Any, numbers: list[int]) -> None:
    for number in numbers:
        await source.send(key=number, value=number)


async def run_until(app: Any, counts: Any, state: dict[str, Any], events: int,
                    within: float = 20) -> dict[Any, Any]:
    """Run a worker until it has counted ``events`` events, commit, and return the
    table as a dict and how many keys were in memory after the commit."""
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(within):
            while state["seen"] < events:
                await anyio.sleep(0.01)
        worker.commit()
        state["cached_after_commit"] = counts.cached()
        table = counts.as_dict()
        worker.stop()
    return table


async def count_restart_count(tmp_path: Path, stores: str, keys: int, cache: int = CACHE,
                              kafka: str | None = None, within: float = 20) -> None:
    name = f"cachecount{next(_ids)}"
    app, source, counts, state = build(name, tmp_path, stores, cache, kafka)
    # every key once, then the first half again: those were dropped from the cache
    # long before, so their counts come back from the store
    await send(source, list(range(keys)) + list(range(keys // 2)))
    table = await run_until(app, counts, state, keys + keys // 2, within)
    assert table == {k: 2 if k < keys // 2 else 1 for k in range(keys)}
    assert state["cached_after_commit"] <= cache
    # between commits: the clean keys kept, the changed keys up to half the cache (then
    # the table asks for a commit, which comes when the agent waits for the next poll)
    # and the rest of the poll in hand
    assert state["most_cached"] <= cache + cache // 2 + POLL

    # a new worker of the same app (same store directory, same log) goes on counting
    app, source, counts, state = build(name, tmp_path, stores, cache, kafka)
    await send(source, list(range(0, keys, 10)))
    table = await run_until(app, counts, state, keys // 10, within)
    expected = {k: 2 if k < keys // 2 else 1 for k in range(keys)}
    for k in range(0, keys, 10):
        expected[k] += 1
    assert table == expected


@pytest.mark.parametrize("stores", ["rocksdb://", "memory://"])
async def test_many_more_keys_than_the_cache_are_counted_across_a_restart(
        tmp_path: Path, stores: str) -> None:
    await count_restart_count(tmp_path, stores, keys=1000)


@pytest.mark.kafka
async def test_many_more_keys_than_the_cache_under_exactly_once(tmp_path: Path,
                                                                 tansu: str) -> None:
    await count_restart_count(tmp_path, "rocksdb://", keys=300, cache=100, kafka=tansu,
                              within=60)


async def test_changed_keys_beyond_the_cache_wait_for_their_commit(tmp_path: Path) -> None:
    """One poll changes more keys than the cache holds, and no commit comes until the
    end: every change is still there, in the changelog and the store."""
    name = f"cachedirty{next(_ids)}"
    app, source, counts, state = build(name, tmp_path, "rocksdb://", cache=10)
    await send(source, list(range(POLL)))
    table = await run_until(app, counts, state, POLL)
    assert table == {k: 1 for k in range(POLL)}
    assert state["cached_after_commit"] <= 10
    changelog = streamkit.Consumer(f"{name}-counts-changelog", broker=f"log://{tmp_path}/log",
                                   datadir=str(tmp_path), auto_offset_reset="earliest")
    records: list[Any] = []
    for _ in range(20):
        for messages in changelog.poll(100).values():
            records.extend(messages)
    changelog.close()
    assert sorted(int(m.key) for m in records) == list(range(POLL))


async def test_windows_of_keys_dropped_from_the_cache_close_with_their_counts(
        tmp_path: Path) -> None:
    name = f"cachewindows{next(_ids)}"
    app = streamkit.App(name, broker=f"log://{tmp_path}/log", datadir=str(tmp_path),
                        web_enabled=False, commit_interval=60.0, topic_partitions=1,
                        max_poll_records=50)
    source = app.topic("numbers", key_type=int, value_type=int, partitions=1)
    closed: dict[Any, int] = {}
    per_minute = app.Table("per_minute", default=int, cache_size=20,
                           on_window_close=lambda key, value: closed.__setitem__(key, value)
                           ).tumbling(60, expires=3600)
    seen = []

    @app.agent(source)
    async def count(stream):
        async for number in stream:
            per_minute[number] += 1
            seen.append(number)

    keys = 300
    # two events per key in the first minute (the second long after the key left the
    # cache), then one event at 60 s that closes that minute
    for ts, number in [(1.0, k) for k in range(keys)] + [(2.0, k) for k in range(keys)]:
        await source.send(key=number, value=number, timestamp=ts, partition=0)
    await source.send(key=0, value=0, timestamp=61.0, partition=0)
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(20):
            while len(seen) < 2 * keys + 1:
                await anyio.sleep(0.01)
        worker.commit()
        assert per_minute.table.cached() <= 20
        worker.stop()
    assert closed == {(k, (0.0, 60.0)): 2 for k in range(keys)}


def test_the_cache_size_is_a_setting_and_a_table_option(monkeypatch) -> None:
    app = streamkit.App("cachesetting", broker="memory://cachesetting", store="memory://",
                        web_enabled=False, table_cache_size=500)
    assert app.Table("a").cache_size == 500
    assert app.Table("b", cache_size=7).cache_size == 7
    assert streamkit.App("cachedefault", broker="memory://x", web_enabled=False
                         ).Table("c").cache_size == 100_000
    monkeypatch.setenv("STREAMKIT_TABLE_CACHE_SIZE", "123")
    assert streamkit.App("cacheenv", broker="memory://y", web_enabled=False
                         ).Table("d").cache_size == 123
    with pytest.raises(ImproperlyConfigured, match="cache_size=-1"):
        app.Table("e", cache_size=-1)
    monkeypatch.setenv("STREAMKIT_TABLE_CACHE_SIZE", "-5")
    with pytest.raises(ImproperlyConfigured, match="table_cache_size=-5"):
        streamkit.App("cachebad", broker="memory://z", web_enabled=False)


def test_the_oldest_keys_go_first_and_keys_written_since_the_last_commit_last() -> None:
    cache = {k: k for k in range(10)}
    assert trim(cache, 6, {0, 1}) == 4
    # 2-5 were the oldest not written lately; 0 and 1 moved to the back
    assert list(cache) == [6, 7, 8, 9, 0, 1]
    assert trim(cache, 2, {7, 8, 9, 0, 1}) == 4
    # every old key gone, then the oldest of the recent ones
    assert list(cache) == [0, 1]
    assert trim(cache, 5, set()) == 0
