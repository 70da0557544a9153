"""A versioned table read over HTTP shows each key's latest value, like any table."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from .conftest import eventually, new_app, running_worker

pytestmark = pytest.mark.anyio


async def test_the_table_views_read_a_versioned_tables_latest_values(tmp_path: Any
                                                                     ) -> None:
    app = new_app("webversioned", tmp_path, topic_partitions=2)
    updates = app.topic("price_updates", key_type=str)
    prices = app.Table("prices", key_type=str, versioned=timedelta(hours=1))

    @app.agent(updates)
    async def update(stream: Any) -> None:
        async for key, value in stream.items():
            prices[key] = value

    async with running_worker(app) as client:
        for key, value, ts in [("k", "new", 10_300), ("k", "old", 10_100),
                               ("j", "x", 10_100), ("j", None, 10_200),
                               ("m", "only", 10_050)]:
            await updates.send(key=key, value=value, timestamp=ts)

        async def listed() -> Any:
            if len(prices.history("j")) < 2 or "m" not in prices:
                return False
            return (await client.get("/table/prices")).json()
        body = await eventually(listed, what="the versioned table's updates")
        assert {i["key"]: i["value"] for i in body["items"]} == {"k": "new", "m": "only"}
        one = await client.get("/table/prices/k")
        assert one.json() == {"table": "prices", "key": "k", "value": "new"}
        assert (await client.get("/table/prices/j")).status_code == 404
        # a write more than the hour kept behind k's stream time (10 300 s) is dropped
        await updates.send(key="k", value="too old", timestamp=10_300 - 3601)
        await eventually(lambda: prices.late_writes == 1, what="the late write")
        status = (await client.get("/api/status")).json()
        summary = next(t for t in status["tables"] if t["name"] == "prices")
        assert (summary["versioned"], summary["late_events"]) == (3600.0, 1)
        assert status["late_events"] == {"prices": 1}
        assert prices["k"] == "new" and prices.as_of("k", 6000) is None
