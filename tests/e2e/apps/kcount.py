"""A counting app for the kafka:// worker tests. STREAMKIT_BROKER names the broker,
KCOUNT_ID the app id (also the prefix of its topics)."""
import os

import anyio

import streamkit

APP_ID = os.environ["KCOUNT_ID"]


class Ride(streamkit.Record, serializer="json"):
    id: int
    vendorId: int


app = streamkit.App(APP_ID, web_enabled=False, commit_interval=0.2, session_timeout=3.0,
                    topic_partitions=4)
rides = app.topic(f"{APP_ID}-rides", key_type=str, value_type=Ride, partitions=4)
processed = app.topic(f"{APP_ID}-processed", value_type=None)
vendor_rides = app.Table("vendor_rides", default=int)


@app.agent(rides)
async def count(stream):
    async for ride in stream.group_by(Ride.vendorId):
        vendor_rides[ride.vendorId] += 1
        processed.send_soon(key=str(ride.id), value={"id": ride.id, "pid": os.getpid()})
        await anyio.sleep(0.002)      # slow enough that both workers get to work


if __name__ == "__main__":
    app.main()
