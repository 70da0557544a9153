"""examples/join_trips.py as a user runs it: a worker, then ``produce``; every trip
with a drop-off printed with its duration, the trips of 1 July without one printed
once their windows have closed, those of 2 July still waiting in theirs."""
from __future__ import annotations

import re
import sys
from datetime import datetime

import pytest

from example_helpers import EXAMPLES, run_example, sample_rows

pytestmark = pytest.mark.slow
SCRIPT = str(EXAMPLES / "join_trips.py")
#: the rides the example sends without a drop-off: every 25th of each day
UNFINISHED = range(25, 301, 25)


def _produce(tmp_path) -> None:
    done = run_example("join_trips.py", "produce", datadir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("sent 600 pick-ups to trip_pickups and 576 drop-offs "
                                   "to trip_dropoffs")


def _check_output(text: str) -> None:
    rows = sample_rows()
    completed = re.findall(r"^trip (\d{4}-\d{3}): ", text, re.M)
    assert len(completed) == len(set(completed)) == 576
    assert set(completed) == {f"{day}-{n:03d}" for day in ("0701", "0702")
                              for n in range(1, 301) if n not in UNFINISHED}
    # one line in full, computed from the CSV: the first ride of 2 July
    first = rows[0]
    minutes = (datetime.fromisoformat(first["tpep_dropoff_datetime"])
               - datetime.fromisoformat(first["tpep_pickup_datetime"])).total_seconds() / 60
    start = first["tpep_pickup_datetime"].replace("2020-07-01", "2020-07-02")
    assert (f"trip 0702-001: {start}, {minutes:.1f} min, zone {first['PULocationID']} -> "
            f"{first['DOLocationID']}, {float(first['trip_distance']):.2f} mi, "
            f"${float(first['total_amount']):.2f}\n") in text
    # the drop-offs of 2 July closed the windows of 1 July: its 12 unfinished trips,
    # each once; those of 2 July wait for a drop-off 3 h 5 min after their pick-up
    unfinished = re.findall(r"^no drop-off within 3 h: trip (\S+), picked up (.*) in "
                            r"zone (\d+)$", text, re.M)
    assert sorted(unfinished) == [
        (f"0701-{n:03d}", rows[n - 1]["tpep_pickup_datetime"], rows[n - 1]["PULocationID"])
        for n in UNFINISHED]
    assert re.findall(r"^trips: .*", text, re.M)[-1] == (
        "trips: 576 completed, 12 without drop-off, 0 late records dropped")


def test_join_trips_prints_completed_trips_and_those_without_a_drop_off(tmp_path,
                                                                        workers):
    worker = workers([sys.executable, SCRIPT, "worker"], tmp_path)
    worker.wait_for(lambda _t: "worker taxi-trips ready" in worker.errors())
    _produce(tmp_path)
    text = worker.wait_for(lambda t: "trips: 576 completed, 12 without" in t)
    assert worker.stop() == 0, worker.errors()
    _check_output(text)


def test_join_trips_gives_the_same_output_when_the_trips_are_sent_first(tmp_path,
                                                                       workers):
    # a partition's drop-offs may be read before its pick-ups: a pick-up read after the
    # drop-offs' stream time has passed its window is reported at once
    _produce(tmp_path)
    worker = workers([sys.executable, SCRIPT, "worker"], tmp_path)
    worker.wait_for(lambda t: "trips: 576 completed" in t)
    text = worker.wait_for(lambda t: "trips: 576 completed, 12 without" in t,
                           timeout=5.0)
    assert worker.stop() == 0, worker.errors()
    _check_output(text)
