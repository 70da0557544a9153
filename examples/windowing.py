"""Rides per vendor in 1-minute tumbling windows of pick-up time; each window is printed
when it closes: ``python examples/windowing.py worker``."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import streamkit
from taxi import TOPIC, TaxiRide

app = streamkit.App("taxi-windows", broker="log://", web_enabled=False)
rides = app.topic(TOPIC, key_type=str, value_type=TaxiRide)


def window_closed(key, count):
    """Called once per window, with its final count, when stream time passes its end."""
    vendor, (start, end) = key
    print(f"window {_hhmm(start)}-{_hhmm(end)} vendor {vendor}: {count} rides", flush=True)


def _hhmm(epoch: float) -> str:
    return f"{datetime.fromtimestamp(epoch, timezone.utc):%H:%M}"


rides_per_minute = app.Table(
    "rides_per_minute", default=int, on_window_close=window_closed,
    help="rides per vendor per minute of pick-up time",
).tumbling(timedelta(minutes=1), expires=timedelta(hours=1)) \
 .relative_to_field(TaxiRide.tpep_pickup_datetime)


@app.agent(rides)
async def count_per_minute(stream):
    async for ride in stream.group_by(TaxiRide.vendorId, name="vendor"):
        rides_per_minute[ride.vendorId] += 1


if __name__ == "__main__":
    app.main()
