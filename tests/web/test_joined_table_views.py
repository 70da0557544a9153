"""A table-table join read over HTTP like any table, against a real worker."""
from __future__ import annotations

from typing import Any

import pytest

from .conftest import eventually, new_app, running_worker

pytestmark = pytest.mark.anyio


async def test_the_table_views_read_a_joined_table(tmp_path: Any) -> None:
    app = new_app("webjoin", tmp_path, topic_partitions=2)
    trips = app.topic("trips", key_type=str)
    counts = app.Table("trips_per_zone", default=int, key_type=str)
    fares = app.Table("fares_per_zone", default=float, key_type=str)
    counts.join(fares, how="left", name="zone_summary")

    @app.agent(trips)
    async def tally(stream: Any) -> None:
        async for zone, fare in stream.items():
            counts[zone] += 1
            if fare is not None:
                fares[zone] += fare

    async with running_worker(app) as client:
        for zone, fare in [("132", 10.0), ("132", 2.5), ("7", None)]:
            await trips.send(key=zone, value=fare)

        async def listed() -> Any:
            body = (await client.get("/table/zone_summary")).json()
            return len(body.get("items", ())) == 2 and body
        body = await eventually(listed, what="the joined table's two keys")
        assert {i["key"]: i["value"] for i in body["items"]} == {
            "132": [2, 12.5], "7": [1, None]}
        one = await client.get("/table/zone_summary/132")
        assert one.json() == {"table": "zone_summary", "key": "132", "value": [2, 12.5]}
        assert (await client.get("/table/zone_summary/99")).status_code == 404
        names = {t["name"] for t in (await client.get("/table/")).json()}
        assert "zone_summary" in names
