"""``streamkit demo``: the taxi sample counted per vendor and per minute, live.

Everything happens in this process and a throw-away data directory: a timer feeds the
bundled sample (``streamkit.cli.sample``) into the embedded log at ~60 rides/s, one
agent counts rides per vendor in a RocksDB table, another counts rides per vendor and
minute of pick-up time in a tumbling-window table and prints each window as it closes.
When every ride is counted (or ``max_seconds`` pass) the worker stops and a summary is
printed.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, UTC
from pathlib import Path
from typing import Any

import click

RIDES = 300
BATCH = 6                  # rides per feed tick
TICK = 0.1                 # seconds between ticks: 60 rides/s, ~5 s for the sample


def run_demo(datadir: str | None = None, max_seconds: float = 10.0) -> None:
    """Run the demo (blocking); keep its data in ``datadir`` or a temporary folder."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    root = Path(datadir) if datadir else Path(tempfile.mkdtemp(prefix="streamkit-demo-"))
    try:
        _Demo(root, max_seconds).run()
    finally:
        if datadir is None:
            shutil.rmtree(root, ignore_errors=True)


def _hhmm(epoch: float) -> str:
    return f"{datetime.fromtimestamp(epoch, UTC):%H:%M}"


class _Demo:
    def __init__(self, root: Path, max_seconds: float) -> None:
        from streamkit.app import App
        from streamkit.cli.sample import generate_rides, ride_json
        from streamkit.models import Record

        self.root = root
        self.max_seconds = max_seconds
        self.rows = [ride_json(r) for r in generate_rides(RIDES)]
        self.fed = 0
        self.windows_closed = 0
        self.started = time.monotonic()
        app = self.app = App(
            "demo", broker=f"log://{root / 'log'}", datadir=str(root), web_enabled=False,
            topic_partitions=4, commit_interval=0.5)
        # the demo's own folder, whatever STREAMKIT_* variables say (they win in App())
        app.conf.broker, app.conf.datadir = f"log://{root / 'log'}", str(root)
        app.conf.store, app.conf.topic_partitions = "rocksdb://", 4

        class TaxiRide(Record, serializer="json"):
            vendorId: int
            tpep_pickup_datetime: datetime
            total_amount: float = 0.0

        self.rides = app.topic("yellow_taxi_ride.json", key_type=str, value_type=TaxiRide)
        self.vendor_rides = app.Table("vendor_rides", default=int, help="rides per vendor")
        self.per_minute = app.Table(
            "rides_per_minute", default=int, on_window_close=self.window_closed,
        ).tumbling(timedelta(minutes=1), expires=timedelta(hours=1)) \
            .relative_to_field(TaxiRide.tpep_pickup_datetime)
        self.high = 0
        self.counted = 0
        self.windowed = 0
        self.final_counts: dict[int, int] = {}
        self.open_windows: list[Any] = []

        @app.agent(self.rides)
        async def count_vendor_trips(stream: Any) -> None:
            """Rides per vendor."""
            async for ride in stream.group_by(TaxiRide.vendorId, name="vendor"):
                self.vendor_rides[ride.vendorId] += 1
                self.high += ride.total_amount >= 40
                self.counted += 1
                if self.counted % 50 == 0:
                    counts = ", ".join(f"vendor {v}={n}"
                                       for v, n in sorted(self.vendor_rides.items()))
                    click.echo(f"[{self.elapsed():4.1f}s] counted {self.counted:3d} rides: "
                               f"{counts}")

        @app.agent(self.rides)
        async def windowing(stream: Any) -> None:
            """Rides per vendor per minute of pick-up time."""
            async for ride in stream.group_by(TaxiRide.vendorId, name="minute"):
                self.per_minute[ride.vendorId] += 1
                self.windowed += 1

        @app.timer(interval=TICK)
        async def feed() -> None:
            batch = self.rows[self.fed:self.fed + BATCH]
            for ride in batch:
                self.rides.send_soon(key=str(ride["vendorId"]), value=ride)
            self.fed += len(batch)

        @app.timer(interval=0.25)
        async def watch() -> None:
            if (self.counted >= RIDES and self.windowed >= RIDES) or \
                    self.elapsed() > self.max_seconds:
                # read the tables now: their stores close with the worker
                self.final_counts = dict(sorted(self.vendor_rides.items()))
                self.open_windows = sorted(
                    (vendor, self.per_minute.windows(vendor)[-1])
                    for vendor in self.final_counts)
                app.worker.stop()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def window_closed(self, key: Any, count: int) -> None:
        vendor, (start, end) = key
        self.windows_closed += 1
        click.echo(f"[{self.elapsed():4.1f}s] window {_hhmm(start)}-{_hhmm(end)} "
                   f"vendor {vendor}: {count} rides")

    def run(self) -> None:
        click.echo(f"streamkit demo: {RIDES} taxi rides into the embedded log at "
                   f"{self.root / 'log'}\n"
                   "agents: @count_vendor_trips (table vendor_rides, rides per vendor) and "
                   "@windowing (table rides_per_minute, 1-minute tumbling windows on "
                   "pick-up time)\n")
        self.started = time.monotonic()
        self.app.run_worker(status_interval=None)
        self.summary()

    def summary(self) -> None:
        elapsed = self.elapsed()
        counts = self.final_counts
        expected = Counter(r["vendorId"] for r in self.rows[:self.fed])
        counted = self.counted
        click.echo("")
        click.echo(f"summary after {elapsed:.1f}s: {self.fed} rides produced, "
                   f"{counted} counted, {self.windows_closed} windows closed, "
                   f"{self.high} rides of $40 or more")
        click.echo("rides per vendor: " +
                   ", ".join(f"vendor {v}: {n}" for v, n in counts.items()) +
                   (f"  (matches the {self.fed} rides produced)"
                    if counts == dict(sorted(expected.items()))
                    else f"  (the {self.fed} rides produced have "
                         f"{dict(sorted(expected.items()))})"))
        still_open = [f"{_hhmm(rng[0])}-{_hhmm(rng[1])} vendor {vendor}: {n}"
                      for vendor, (rng, n) in self.open_windows]
        if still_open:
            click.echo("last windows, still open (stream time has not reached their end): " +
                       "; ".join(still_open))
        click.echo("try it yourself: docs/tutorial.md, or `streamkit worker "
                   "examples/stream_count_vendor_trips.py`")

