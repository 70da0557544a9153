"""``stream.join(table, as_of=True)`` looks up the value a versioned table had at each
event's timestamp, so reprocessing old events gives the values of their time.

The table is filled first with prices at 100, 300 and 500 s; the orders (at 50, 150,
350 and 600 s) come after, as when a job reprocesses old orders against an up-to-date
table. ``as_of=True`` gives each order the price of its time; a plain join gives the
latest price to all. A second run from scratch (another app id: a new group and new
tables over the same topics) gives the same results. streamkit does not synchronize
the two topics by timestamp (the table's agent runs beside the join), so each run fills
the table before its join agent starts, as examples/join_zones.py does.
"""
from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

import streamkit
from streamkit.cli.main import one_line
from streamkit.errors import ImproperlyConfigured
from streamkit.worker import Worker

pytestmark = pytest.mark.anyio
_ids = itertools.count()

PRICES = [(100, "p100"), (300, "p300"), (500, "p500")]
ORDERS = [(50, "o50"), (150, "o150"), (350, "o350"), (600, "o600")]
AS_OF = [("o50", None), ("o150", "p100"), ("o350", "p300"), ("o600", "p500")]
LATEST = [(order, "p500") for _, order in ORDERS]


def build(app_id: str, broker: str, tmp_path: Path, *, joins: bool
          ) -> tuple[streamkit.App, Any, Any, Any, dict[str, list[Any]]]:
    if broker == "memory":
        # (one memory broker per test, shared by its apps: named after the directory)
        app = streamkit.App(app_id, broker=f"memory://{tmp_path.name}", store="memory://",
                            web_enabled=False, commit_interval=0.05)
    else:
        app = streamkit.App(app_id, broker="log://", store="rocksdb://",
                            datadir=str(tmp_path), web_enabled=False,
                            commit_interval=0.05)
    prices = app.topic("prices", key_type=str, partitions=2)
    orders = app.topic("orders", key_type=str, partitions=2)
    table = app.Table("price", versioned=timedelta(hours=1), key_type=str,
                      partitions=2)
    got: dict[str, list[Any]] = {"as_of": [], "latest": []}

    @app.agent(prices)
    async def update(stream: Any) -> None:
        async for key, value in stream.items():
            table[key] = value

    if joins:
        @app.agent(orders)
        async def join_as_of(stream: Any) -> None:
            async for order, price in stream.join(table, as_of=True, how="left"):
                got["as_of"].append((order, price))

        @app.agent(orders)
        async def join_latest(stream: Any) -> None:
            async for order, price in stream.join(table, how="left"):
                got["latest"].append((order, price))
    return app, prices, orders, table, got


async def run_until(app: streamkit.App, condition: Any) -> None:
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(10):
            while not (worker.ready and condition()):
                await anyio.sleep(0.005)
        worker.stop()


@pytest.mark.parametrize("broker", ["memory", "log"])
async def test_as_of_joins_give_the_values_of_each_events_time_on_every_run(
        broker: str, tmp_path: Path) -> None:
    first = f"vjoin{next(_ids)}"
    # the table is up to date (its last price at 500) before the old orders come
    app, prices, orders, table, got = build(first, broker, tmp_path, joins=False)
    for ts, price in PRICES:
        await prices.send(key="k", value=price, timestamp=ts)
    await run_until(app, lambda: len(table.history("k")) == 3)

    app, prices, orders, table, got = build(first, broker, tmp_path, joins=True)
    for ts, order in ORDERS:
        await orders.send(key="k", value=order, timestamp=ts)
    await run_until(app, lambda: len(got["as_of"]) == len(got["latest"]) == 4)
    assert got["as_of"] == AS_OF
    assert got["latest"] == LATEST

    # from scratch: a new group reads both topics from their start, into new tables
    again = f"vjoin{next(_ids)}"
    app, prices, orders, table, got = build(again, broker, tmp_path, joins=False)
    await run_until(app, lambda: len(table.history("k")) == 3)
    app, prices, orders, table, got = build(again, broker, tmp_path, joins=True)
    await run_until(app, lambda: len(got["as_of"]) == len(got["latest"]) == 4)
    assert got["as_of"] == AS_OF
    assert got["latest"] == LATEST


async def test_as_of_with_a_table_that_keeps_no_history_is_refused() -> None:
    app = streamkit.App("vjoinrefused", broker="memory://vjoinrefused",
                        store="memory://", web_enabled=False)
    plain = app.Table("zones", partitions=1)
    stream = app.topic("rides", partitions=1).stream()
    with pytest.raises(ImproperlyConfigured) as refused:
        stream.join(plain, as_of=True)
    assert one_line(refused.value) == (
        "join(zones, as_of=True): table 'zones' is not versioned; declare it with "
        "app.Table('zones', versioned=timedelta(hours=1)) to keep its history, or "
        "join without as_of=")
