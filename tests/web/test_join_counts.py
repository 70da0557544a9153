"""Events a stream-table join drops are counted where users look: /metrics and
/api/status of a real running worker."""
from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import eventually, new_app, running_worker

pytestmark = pytest.mark.anyio


async def test_join_drops_show_in_metrics_and_status(tmp_path):
    app = new_app("webjoin", tmp_path)
    rides = app.topic("rides", key_type=str)
    zones = app.GlobalTable("zones")
    joined = []

    @app.agent(rides)
    async def enrich(stream):
        async for ride, zone in stream.join(zones, on=lambda ride: ride["zone"]):
            joined.append((ride, zone))

    async with running_worker(app) as client:
        zones["a"] = "Astoria"
        for zone in ("a", "b", None, "a"):
            await rides.send(key="k", value={"zone": zone})
        await eventually(lambda: len(joined) == 2 and app.monitor.join_drops["zones"] == 2,
                         what="4 rides joined or dropped")
        metrics = (await client.get("/metrics")).text
        samples = {(s.name, s.labels.get("table")): s.value
                   for family in text_string_to_metric_families(metrics)
                   for s in family.samples}
        status = (await client.get("/api/status")).json()
    # "b" has no zone (inner join), None is no lookup key
    assert samples[("streamkit_join_dropped_events_total", "zones")] == 2
    assert status["join_drops"] == {"zones": 2}
