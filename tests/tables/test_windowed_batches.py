"""Windowed tables in a worker, where events come in batches of many (the per-event path
prepares each batch once: its partition, its events' times, the window last used).
The results must be those of the rules in docs/windows.md, event by event."""
from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta
from typing import Any

import anyio
import pytest

import streamkit
from streamkit.worker import Worker

pytestmark = pytest.mark.anyio
_ids = itertools.count()


class Tick(streamkit.Record, serializer="json"):
    key: str
    at: float | None = None
    when: datetime | None = None


def make_app(**settings: Any) -> tuple[streamkit.App, Any]:
    name = f"winbatch{next(_ids)}"
    settings.setdefault("max_poll_records", 64)
    app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                        web_enabled=False, topic_partitions=1, **settings)
    return app, app.topic("ticks", value_type=Tick, partitions=1)


def count_ticks(app: streamkit.App, topic: Any, windows: Any) -> list[Any]:
    """An agent adding 1 to the window of each tick's key; the ticks it has seen."""
    seen: list[Any] = []

    @app.agent(topic)
    async def count(stream):
        async for tick in stream:
            windows[tick.key] += 1
            seen.append(tick)
    return seen


async def run(app: streamkit.App, seen: list[Any], events: int,
              windows: Any) -> dict[Any, Any]:
    """Run a worker until its agent has seen ``events`` events; the table's windows
    (``(key, window) -> value``) then."""
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(10):
            while len(seen) < events:
                await anyio.sleep(0.01)
        held = dict(windows.table.items())
        worker.stop()
    return held


def model(events: list[tuple[str, int]], size: int, grace: int, expires: int | None
          ) -> tuple[dict[Any, int], list[tuple[Any, int]], list[int], int]:
    """The tumbling-window rules applied one event at a time, in integer milliseconds:
    (the table's windows, the on_window_close calls in order, how many of them were
    made by the end of each event, the late events)."""
    values: dict[tuple[str, tuple[int, int]], int] = {}
    open_windows: dict[tuple[int, int], set[str]] = {}
    expiring: list[tuple[int, tuple[int, int], str]] = []
    closed: list[tuple[Any, int]] = []
    stream_time: int | None = None
    late = 0
    closed_by: list[int] = []
    for key, ts in events:
        closed_by.append(len(closed))  # (the closing comes first: set below)
        if stream_time is None or ts > stream_time:
            stream_time = ts
            for window in sorted(w for w in open_windows if w[1] + grace <= ts):
                for k in sorted(open_windows.pop(window), key=repr):
                    closed.append(((k, window), values[(k, window)]))
                    if expires is not None:
                        expiring.append((window[1] + expires, window, k))
            for entry in [e for e in expiring if e[0] <= ts]:
                expiring.remove(entry)
                del values[(entry[2], entry[1])]
            closed_by[-1] = len(closed)
        start = ts // size * size
        window = (start, start + size)
        if stream_time >= window[1] + grace:
            late += 1
            continue
        values[(key, window)] = values.get((key, window), 0) + 1
        open_windows.setdefault(window, set()).add(key)

    def seconds(window: tuple[int, int]) -> tuple[float, float]:
        return (window[0] / 1000, window[1] / 1000)
    return ({(k, seconds(w)): v for (k, w), v in values.items()},
            [((k, seconds(w)), v) for (k, w), v in closed], closed_by, late)


@pytest.mark.parametrize(("relative_to", "grace", "expires"), [
    ("stream", 2, 30), ("field", 2, 30), ("field", 0, None)])
async def test_batched_tumbling_windows_follow_the_rules_event_by_event(
        relative_to: str, grace: int, expires: int | None):
    rng = random.Random(15)
    # mostly in order, some up to 6 s late: windows of 10 s with 2 s of grace, so some
    # events are late, some within grace, and batches of 64 span several windows
    times_ms = [max(0, i * 250 + rng.randint(-6000, 500)) for i in range(600)]
    keys = [rng.choice("abc") for _ in times_ms]
    app, topic = make_app()
    closed: list[tuple[Any, int]] = []
    table = app.Table("per10s", default=int,
                      on_window_close=lambda key, value: closed.append((key, value)))
    windows = table.tumbling(10, grace=grace, expires=expires)
    if relative_to == "field":
        windows = windows.relative_to_field(Tick.at)
    seen: list[Any] = []
    closed_by: list[int] = []

    @app.agent(topic)
    async def count(stream):
        async for tick in stream:
            windows[tick.key] += 1
            seen.append(tick)
            closed_by.append(len(closed))   # on_window_close runs as the event comes

    for key, ms in zip(keys, times_ms, strict=True):
        await topic.send(value=Tick(key=key, at=ms / 1000), timestamp=ms / 1000)
    held = await run(app, seen, len(times_ms), windows)
    # what the message timestamps say (send() takes float seconds to whole ms)
    event_ms = [int(ms / 1000 * 1000) if relative_to == "stream" else ms
                for ms in times_ms]
    expected, expected_closed, expected_by, late = model(list(zip(keys, event_ms, strict=True)),
                                            10_000, grace * 1000,
                                            None if expires is None else expires * 1000)
    assert late > 0 and len(expected_closed) > 20
    assert held == expected
    assert closed == expected_closed
    assert closed_by == expected_by
    assert windows.late_events == late


async def test_float_sized_windows_in_one_batch_are_half_open():
    app, topic = make_app()
    windows = app.Table("tenths", default=int).tumbling(0.1).relative_to_field(Tick.at)
    seen = count_ticks(app, topic, windows)

    times = [0.25, 0.3, 0.35, 0.3999, 0.4, 0.45, 0.5, 0.6 - 1e-9, 0.6]
    for at in times:
        await topic.send(value=Tick(key="k", at=at))
    held = await run(app, seen, len(times), windows)
    assert sorted(held.items()) == [(("k", (0.2, 0.3)), 1), (("k", (0.3, 0.4)), 3),
                                    (("k", (0.4, 0.5)), 2), (("k", (0.5, 0.6)), 2),
                                    (("k", (0.6, 0.7)), 1)]
    assert windows.late_events == 0


async def test_batched_hopping_windows_and_datetime_fields():
    app, topic = make_app()
    windows = app.Table("hops", default=int).hopping(10, 5).relative_to_field(Tick.when)
    seen = count_ticks(app, topic, windows)

    epoch = datetime(1970, 1, 1)
    for second in (1, 4, 5, 9, 10, 12):
        await topic.send(value=Tick(key="k", when=epoch + timedelta(seconds=second)))
    held = await run(app, seen, 6, windows)
    assert sorted(held.items()) == [(("k", (-5.0, 5.0)), 2), (("k", (0.0, 10.0)), 4),
                                    (("k", (5.0, 15.0)), 4), (("k", (10.0, 20.0)), 2)]


async def test_events_without_the_time_field_in_a_batch_do_not_stop_the_others():
    # the batch's times cannot all be read: the table takes them event by event, and
    # the events the agent leaves out never need one
    app, topic = make_app()
    windows = app.Table("some", default=int).tumbling(10).relative_to_field(Tick.at)
    seen: list[Any] = []

    @app.agent(topic)
    async def count(stream):
        async for tick in stream:
            if tick.at is not None:
                windows[tick.key] += 1
            seen.append(tick)

    for at in (1.0, None, 2.0, None, 12.0):
        await topic.send(value=Tick(key="k", at=at))
    held = await run(app, seen, 5, windows)
    assert sorted(held.items()) == [(("k", (0.0, 10.0)), 2), (("k", (10.0, 20.0)), 1)]


async def test_tumbling_windows_continue_from_the_store_after_a_restart():
    name = f"winbatch{next(_ids)}"

    def build() -> tuple[streamkit.App, Any, Any, list[Any]]:
        app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                            web_enabled=False, topic_partitions=1, commit_interval=0.02)
        topic = app.topic("ticks", value_type=Tick, partitions=1)
        windows = app.Table("w", default=int).tumbling(10).relative_to_field(Tick.at)
        return app, topic, windows, count_ticks(app, topic, windows)

    async def send(times: list[float]) -> None:
        _, topic, _, _ = build()
        for at in times:
            await topic.send(value=Tick(key="k", at=at))

    await send([1.0, 2.0, 11.0])
    app, _, windows, seen = build()
    await run(app, seen, 3, windows)
    await send([3.0, 12.0, 13.0])       # 3.0 is late: stream time is 11
    app, _, windows, seen = build()
    held = await run(app, seen, 3, windows)
    assert sorted(held.items()) == [(("k", (0.0, 10.0)), 2), (("k", (10.0, 20.0)), 3)]
    assert windows.late_events == 1


async def test_two_agents_taking_turns_on_one_table_each_count_their_events():
    app, topic = make_app()
    other = app.topic("more", value_type=Tick, partitions=1)
    windows = app.Table("shared", default=int).tumbling(10, grace=100
                                                          ).relative_to_field(Tick.at)
    seen: list[Any] = []

    async def count(stream):
        async for tick in stream:
            windows[tick.key] += 1
            seen.append(tick)
            await anyio.sleep(0)    # the other agent goes on, mid-batch

    app.agent(topic, name="first")(count)
    app.agent(other, name="second")(count)
    for at in range(100):
        await topic.send(value=Tick(key="x", at=float(at)))
        await other.send(value=Tick(key="y", at=float(at) + 0.5))
    held = await run(app, seen, 200, windows)
    assert held == {(key, (start, start + 10.0)): 10
                    for key in "xy" for start in range(0, 100, 10)}
    assert windows.late_events == 0
