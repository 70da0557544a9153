"""``streamkit table APP NAME [KEY]`` against a real worker: while it runs (holding its
RocksDB stores) and after it stopped, the command shows what the worker's own timer
prints of its tables, windowed tables window by window."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streamkit.transport import connect
from streamkit.types import OutgoingRecord

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
STREAMKIT = [sys.executable, "-c", "from streamkit.cli import main; main()"]
T0 = datetime(2020, 7, 1, tzinfo=UTC).timestamp()

APP = textwrap.dedent('''
    import json
    import streamkit

    class Ride(streamkit.Record, serializer="json"):
        vendor: int
        driver: str

    app = streamkit.App("tbl", web_enabled=False, commit_interval=0.2)
    rides = app.topic("rides", value_type=Ride, partitions=1)
    counts = app.Table("counts", default=int, help="rides per vendor")
    drivers = app.Table("drivers", default=int, key_type=str)
    per_minute = app.Table("per_minute", default=int).tumbling(60)
    # (typed keys: the worker reads them back from its cache, the command from JSON)
    typed = app.Table("typed", default=int, key_type=int).tumbling(60)

    @app.agent(rides)
    async def count(stream):
        async for ride in stream.group_by(Ride.vendor, name="vendor"):
            counts[ride.vendor] += 1
            drivers[ride.driver] += 1
            per_minute[ride.vendor] += 1
            typed[ride.vendor] += 1

    @app.timer(interval=0.3)
    async def report():
        print("TABLES", json.dumps({
            "counts": sorted(counts.items()),
            "drivers": sorted(drivers.items()),
            "per_minute": sorted([k, list(w), v]
                                 for (k, w), v in per_minute.table.items())}), flush=True)
''')

#: (vendor, driver, seconds after T0), in time order (on one partition: no ride is
#: late for a window that closed)
RIDES = [(2, "cy", 5), (1, "ann", 10), (1, "bob", 20), (2, "cy", 50), (1, "ann", 70),
         (3, "dee", 125)]


def env_for(datadir: Path) -> dict[str, str]:
    env = dict(os.environ, STREAMKIT_DATADIR=str(datadir / "stores"), PYTHONUNBUFFERED="1",
               PYTHONPATH=str(REPO))
    env.pop("STREAMKIT_BROKER", None)
    env.pop("STREAMKIT_DEBUG", None)
    return env


def table(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STREAMKIT, "table", str(tmp_path / "tbl_app.py"), *args],
                          env=env_for(tmp_path), cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)


def as_json(tmp_path: Path, name: str, *key: str) -> list[dict]:
    done = table(tmp_path, name, *key, "--format", "json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def produce(tmp_path: Path) -> None:
    broker = connect("log://", datadir=str(tmp_path / "stores"))
    try:
        broker.create_topic("rides", partitions=1, exist_ok=True)
        broker.produce("rides", [
            OutgoingRecord(None, json.dumps({"vendor": v, "driver": d}).encode(), [],
                           int((T0 + s) * 1000), None)
            for v, d, s in RIDES], acks="all")
    finally:
        broker.close()


def worker_tables(proc: subprocess.Popen[str], timeout: float = 30.0) -> dict:
    """The worker's own view, once its timer prints every ride counted."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("TABLES "):
            tables = json.loads(line[len("TABLES "):])
            if sum(v for _, v in tables["counts"]) == len(RIDES):
                return tables
        elif not line and proc.poll() is not None:
            break
    proc.kill()
    pytest.fail("the worker never counted every ride: " + proc.stderr.read()[-3000:])


def test_table_shows_what_the_worker_holds_while_it_runs_and_after(tmp_path):
    (tmp_path / "tbl_app.py").write_text(APP)
    produce(tmp_path)
    proc = subprocess.Popen([*STREAMKIT, "worker", str(tmp_path / "tbl_app.py"),
                             "--status-interval", "0"], env=env_for(tmp_path),
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        seen = worker_tables(proc)
        time.sleep(0.5)                  # a commit: the changelog has what it printed
        running = {name: as_json(tmp_path, name) for name in seen}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert seen["counts"] == [[1, 3], [2, 2], [3, 1]]
    assert seen["drivers"] == [["ann", 2], ["bob", 1], ["cy", 2], ["dee", 1]]
    # the command, while the worker ran, agrees with the worker's own view
    assert [[r["key"], r["value"]] for r in running["counts"]] == seen["counts"]
    assert [[r["key"], r["value"]] for r in running["drivers"]] == seen["drivers"]
    assert [[r["key"], r["window"], r["value"]] for r in running["per_minute"]] == \
        seen["per_minute"]
    assert seen["per_minute"] == [[1, [T0, T0 + 60], 2], [1, [T0 + 60, T0 + 120], 1],
                                  [2, [T0, T0 + 60], 2], [3, [T0 + 120, T0 + 180], 1]]
    assert as_json(tmp_path, "typed") == running["per_minute"]
    # and after it stopped
    assert {name: as_json(tmp_path, name) for name in seen} == running

    box = table(tmp_path, "per_minute")
    assert box.returncode == 0, box.stderr
    assert "Table per_minute of app tbl (changelog tbl-per_minute-changelog on log://)" \
        in box.stdout
    assert "│ 1   │ 2020-07-01 00:00:00 │ 2020-07-01 00:01:00 │ 2     │" in box.stdout
    one_key = table(tmp_path, "per_minute", "1")
    assert one_key.stdout.count("│ 1   │") == 2 and "│ 2   │" not in one_key.stdout
    assert as_json(tmp_path, "counts", "2") == [{"key": 2, "value": 2}]
    assert as_json(tmp_path, "drivers", "cy") == [{"key": "cy", "value": 2}]


def test_table_errors_are_one_line(tmp_path):
    (tmp_path / "tbl_app.py").write_text(APP)
    no_log = table(tmp_path, "counts")
    assert no_log.returncode == 1 and "no embedded log at" in no_log.stderr
    produce(tmp_path)
    not_run = table(tmp_path, "counts")
    assert not_run.returncode == 1
    assert "has no changelog topic 'tbl-counts-changelog'" in not_run.stderr
    unknown = table(tmp_path, "nope")
    assert unknown.returncode == 1
    assert "app 'tbl' has no table 'nope' (tables: counts, drivers, per_minute, typed)" \
        in unknown.stderr
    bad_key = table(tmp_path, "typed", "x")
    assert bad_key.returncode == 1 and "not a valid int" in bad_key.stderr
