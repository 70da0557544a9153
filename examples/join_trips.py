"""Pair each taxi pick-up with its drop-off (a stream-stream join), and print the trips
that got no drop-off within 3 h once their window has closed:

    python examples/join_trips.py worker          # in one terminal
    python examples/join_trips.py produce         # in another

``produce`` sends the rides of the sample (examples/data/rides.csv) as the trips of
1 and 2 July 2020 (``--days``): a pick-up event to ``trip_pickups`` and a drop-off
event to ``trip_dropoffs``, both keyed by the trip's id (``0701-007`` is the 7th ride
of 1 July) and timestamped with the pick-up and drop-off times, in time order as the
cabs would report them. Every 25th trip of a day gets no drop-off.

The agent ``trips`` reads ``pickups.join(dropoffs, before=0, after=3 h, grace=5 min,
how="left")``: a pick-up at t joins the drop-off of the same trip between t and
t + 3 h. It prints each completed trip as soon as its drop-off arrives, and a trip with
no drop-off once its window has closed: when the drop-offs' stream time (the latest
drop-off time seen in the partition, not the clock) passes t + 3 h 5 min. So the
drop-offs of 2 July close the windows of 1 July, and its 12 trips without drop-off are
printed; those of the last day stay in their windows until later drop-offs arrive. A
timer prints the counts whenever they change.
"""
from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import streamkit

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "data" / "rides.csv"
FIRST_DAY = datetime(2020, 7, 1, tzinfo=UTC)
#: every NO_DROPOFF-th trip of a day has no drop-off
NO_DROPOFF = 25

app = streamkit.App("taxi-trips", broker="log://", web_enabled=False)


class Pickup(streamkit.Record, serializer="json"):
    """A cab reports a pick-up."""

    trip: str
    vendorId: int
    tpep_pickup_datetime: datetime
    PULocationID: int


class Dropoff(streamkit.Record, serializer="json"):
    """A cab reports the drop-off that ends a trip."""

    trip: str
    tpep_dropoff_datetime: datetime
    DOLocationID: int
    trip_distance: float
    total_amount: float


# the two sides of a join: co-partitioned (same partition count), keyed alike
pickups = app.topic("trip_pickups", key_type=str, value_type=Pickup, partitions=4)
dropoffs = app.topic("trip_dropoffs", key_type=str, value_type=Dropoff, partitions=4)
#: counts since the worker started
counts = {"completed": 0, "without drop-off": 0}


@app.agent(pickups.join(dropoffs, before=timedelta(0), after=timedelta(hours=3),
                        grace=timedelta(minutes=5), how="left", name="trips"))
async def trips(stream):
    """Print each trip: completed, or without drop-off once its window has closed."""
    async for trip, (pickup, dropoff) in stream.items():
        start = f"{pickup.tpep_pickup_datetime:%Y-%m-%d %H:%M:%S}"
        if dropoff is None:
            counts["without drop-off"] += 1
            print(f"no drop-off within 3 h: trip {trip}, picked up {start} in zone "
                  f"{pickup.PULocationID}", flush=True)
            continue
        counts["completed"] += 1
        minutes = (dropoff.tpep_dropoff_datetime
                   - pickup.tpep_pickup_datetime).total_seconds() / 60
        print(f"trip {trip}: {start}, {minutes:.1f} min, zone {pickup.PULocationID} -> "
              f"{dropoff.DOLocationID}, {dropoff.trip_distance:.2f} mi, "
              f"${dropoff.total_amount:.2f}", flush=True)


last_report: list[str] = []


@app.timer(interval=1.0)
async def report():
    """The counts, whenever they changed."""
    late = app.monitor.join_drops["trips"]
    line = (f"trips: {counts['completed']} completed, {counts['without drop-off']} "
            f"without drop-off, {late} late records dropped")
    if counts["completed"] + counts["without drop-off"] and line not in last_report:
        last_report[:] = [line]
        print(line, flush=True)


def trip_events(days: int) -> list[tuple[float, str, Pickup | Dropoff]]:
    """(timestamp, trip, event) of the sample's rides on ``days`` days from 1 July,
    in time order."""
    with open(SAMPLE, newline="") as f:
        rows = list(csv.DictReader(f))
    events: list[tuple[float, str, Pickup | Dropoff]] = []
    for day in range(days):
        shift = timedelta(days=day)
        for n, row in enumerate(rows, 1):
            trip = f"{FIRST_DAY + shift:%m%d}-{n:03d}"
            start = _utc(row["tpep_pickup_datetime"]) + shift
            events.append((start.timestamp(), trip, Pickup(
                trip=trip, vendorId=int(row["VendorID"]), tpep_pickup_datetime=start,
                PULocationID=int(row["PULocationID"]))))
            if n % NO_DROPOFF == 0:
                continue
            end = _utc(row["tpep_dropoff_datetime"]) + shift
            events.append((end.timestamp(), trip, Dropoff(
                trip=trip, tpep_dropoff_datetime=end,
                DOLocationID=int(row["DOLocationID"]),
                trip_distance=float(row["trip_distance"]),
                total_amount=float(row["total_amount"]))))
    events.sort(key=lambda event: event[0])
    return events


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@app.command(streamkit.option("--days", type=int, default=2,
                              help="Days of trips to send, from 1 July 2020."))
async def produce(self, days: int) -> None:
    """Send the sample's pick-ups and drop-offs, keyed by trip id."""
    sent = {pickups.name: 0, dropoffs.name: 0}
    for timestamp, trip, event in trip_events(days):
        topic = pickups if isinstance(event, Pickup) else dropoffs
        await topic.send(key=trip, value=event, timestamp=timestamp)
        sent[topic.name] += 1
    self.say(f"sent {sent[pickups.name]} pick-ups to {pickups.name} and "
             f"{sent[dropoffs.name]} drop-offs to {dropoffs.name}")


if __name__ == "__main__":
    app.main()
