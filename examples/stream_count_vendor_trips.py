"""Count rides per vendor in a table:
``python examples/stream_count_vendor_trips.py worker``."""
from __future__ import annotations

import streamkit
from taxi import TOPIC, TaxiRide

app = streamkit.App("taxi-count", broker="log://", web_enabled=False)
rides = app.topic(TOPIC, key_type=str, value_type=TaxiRide)
vendor_rides = app.Table("vendor_rides", default=int, help="rides per vendor")


@app.agent(rides)
async def count_rides(stream):
    """Re-key the rides by vendor and count them."""
    async for ride in stream.group_by(TaxiRide.vendorId, name="vendor"):
        vendor_rides[ride.vendorId] += 1
        print(f"vendor {ride.vendorId}: {vendor_rides[ride.vendorId]} rides", flush=True)


@app.timer(interval=5.0)
async def report():
    print("vendor_rides:", dict(sorted(vendor_rides.items())), flush=True)


if __name__ == "__main__":
    app.main()
