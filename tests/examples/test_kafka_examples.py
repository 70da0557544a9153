"""The taxi examples on kafka:// (tansu, streamkit broker): the same scripts, only the
broker changes."""
from __future__ import annotations

import re
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from example_helpers import (EXAMPLES, Worker, example_env,  # noqa: E402
                             run_example, sample_rows)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture
def kafka_examples(tansu, tmp_path, monkeypatch):
    """Run examples against tansu: STREAMKIT_BROKER points every script at it."""
    monkeypatch.setenv("STREAMKIT_BROKER", tansu)
    started: list[Worker] = []

    def worker(script: str) -> Worker:
        process = Worker([sys.executable, str(EXAMPLES / script), "worker",
                          "--broker", tansu], tmp_path)
        started.append(process)
        return process

    done = run_example("producer_taxi_json.py", "--broker", tansu, datadir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "sent 300 rides" in done.stdout
    yield worker
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()


def test_count_vendor_trips_on_kafka(kafka_examples):
    expected = Counter(int(r["VendorID"]) for r in sample_rows())
    worker = kafka_examples("stream_count_vendor_trips.py")

    def counts(text: str) -> dict[int, int]:
        return {int(v): int(n) for v, n in re.findall(r"vendor (\d+): (\d+) rides", text)}

    worker.wait_for(lambda t: counts(t) == dict(expected), timeout=90)
    assert worker.stop() == 0, worker.errors()


def test_windowing_on_kafka_closes_each_window_once(kafka_examples):
    expected: Counter = Counter()
    for r in sample_rows():
        pickup = datetime.fromisoformat(r["tpep_pickup_datetime"])
        expected[(int(r["VendorID"]), f"{pickup:%H:%M}")] += 1
    last_minute = {v: max(m for (vv, m) in expected if vv == v) for v in (1, 2)}
    closable = {k: n for k, n in expected.items() if k[1] != last_minute[k[0]]}
    worker = kafka_examples("windowing.py")
    pattern = re.compile(r"window (\d\d:\d\d)-(\d\d:\d\d) vendor (\d+): (\d+) rides")
    text = worker.wait_for(lambda t: len(pattern.findall(t)) >= len(closable), timeout=90)
    assert worker.stop() == 0, worker.errors()
    closed = {}
    for start, _end, vendor, n in pattern.findall(text):
        assert (int(vendor), start) not in closed
        closed[(int(vendor), start)] = int(n)
    assert closed == closable
