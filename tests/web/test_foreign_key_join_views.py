"""A foreign-key join read over HTTP like any table, against a real worker."""
from __future__ import annotations

from typing import Any

import pytest

from .conftest import eventually, new_app, running_worker

pytestmark = pytest.mark.anyio


async def test_the_table_views_read_a_foreign_key_join(tmp_path: Any) -> None:
    app = new_app("webfkjoin", tmp_path, topic_partitions=2)
    updates = app.topic("updates", key_type=str)
    trips = app.Table("trips", key_type=str)
    zones = app.GlobalTable("zones", key_type=int)
    trips.join(zones, foreign_key=lambda trip: trip["zone"], how="left", name="trip_zone")

    @app.agent(updates)
    async def load(stream: Any) -> None:
        async for key, value in stream.items():
            if key.startswith("zone"):
                zones[int(key[4:])] = value
            else:
                trips[key] = value

    async with running_worker(app) as client:
        await updates.send(key="zone132", value="JFK Airport")
        await updates.send(key="a", value={"zone": 132})
        await updates.send(key="b", value={"zone": 7})

        async def listed() -> Any:
            body = (await client.get("/table/trip_zone")).json()
            return len(body.get("items", ())) == 2 and body
        body = await eventually(listed, what="the joined table's two keys")
        assert {i["key"]: i["value"] for i in body["items"]} == {
            "a": [{"zone": 132}, "JFK Airport"], "b": [{"zone": 7}, None]}
        one = await client.get("/table/trip_zone/a")
        assert one.json() == {"table": "trip_zone", "key": "a",
                              "value": [{"zone": 132}, "JFK Airport"]}
        assert (await client.get("/table/trip_zone/zz")).status_code == 404
