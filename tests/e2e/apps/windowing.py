"""Tumbling windows on event time; prints each window when it closes."""
import streamkit


class Ride(streamkit.Record, serializer="json"):
    id: int
    vendorId: int
    pickup: float


def closed(key, value):
    vendor, (start, end) = key
    print(f"CLOSED {vendor} {start:.0f} {end:.0f} {value}", flush=True)


app = streamkit.App("windowing", web_enabled=False, commit_interval=0.2,
                    session_timeout=3.0)
rides = app.topic("rides", key_type=str, value_type=Ride)
per_minute = app.Table("per_minute", default=int, on_window_close=closed).tumbling(
    60, expires=600).relative_to_field(Ride.pickup)


@app.agent(rides)
async def count(stream):
    async for ride in stream.group_by(Ride.vendorId):
        per_minute[ride.vendorId] += 1


if __name__ == "__main__":
    app.main()
