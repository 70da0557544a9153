"""A counting app for end-to-end tests. Broker and datadir come from STREAMKIT_* env."""
import json
import os

import streamkit


class Ride(streamkit.Record, serializer="json"):
    id: int
    vendorId: int
    total_amount: float = 0.0


app = streamkit.App("counting", web_enabled=False, commit_interval=0.2,
                    session_timeout=3.0)
rides = app.topic("rides", key_type=str, value_type=Ride)
processed = app.topic("processed", value_type=None)
high = app.topic("rides.high")
vendor_rides = app.Table("vendor_rides", default=int)
SLOW = float(os.environ.get("COUNTING_SLEEP", "0"))


@app.agent(rides)
async def count(stream):
    async for ride in stream.group_by(Ride.vendorId):
        vendor_rides[ride.vendorId] += 1
        processed.send_soon(key=str(ride.id), value={"id": ride.id, "pid": os.getpid()})
        if ride.total_amount >= 40:
            await streamkit.current_event().forward(high)
        if SLOW:
            import anyio
            await anyio.sleep(SLOW)


@app.timer(0.3)
async def report():
    print("REPORT", json.dumps(dict(vendor_rides.items()), sort_keys=True), flush=True)


if __name__ == "__main__":
    app.main()
