"""Every example runs as a real process on a temp datadir and prints what the docs say."""
from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from datetime import datetime

import pytest

import streamkit

from example_helpers import EXAMPLES, SAMPLE, produce_sample, run_example, sample_rows

pytestmark = pytest.mark.slow


def test_generator_is_deterministic_and_matches_the_committed_sample(tmp_path):
    out = tmp_path / "rides.csv"
    done = run_example("generate_rides.py", "--out", str(out), datadir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == SAMPLE.read_bytes()
    header = SAMPLE.read_text().splitlines()[0].split(",")
    assert len(header) == 18 and header[0] == "VendorID" and header[-1] == "congestion_surcharge"
    rows = sample_rows()
    assert len(rows) == 300
    assert {r["VendorID"] for r in rows} == {"1", "2"}
    # a different seed gives a different sample
    other = tmp_path / "other.csv"
    run_example("generate_rides.py", "--out", str(other), "--seed", "7", datadir=tmp_path)
    assert other.read_bytes() != SAMPLE.read_bytes()


def test_producer_sends_json_keyed_by_vendor_and_consumer_prints_partition_offset(tmp_path):
    produce_sample(tmp_path)
    done = run_example("consumer.py", "--timeout", "2", datadir=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("partition=")]
    assert len(lines) == 300
    assert "read 300 rides as group taxi-consumer" in done.stdout
    seen = Counter()
    partition_of_vendor = {}
    for line in lines:
        fields = dict(part.split("=") for part in line.split())
        seen[fields["vendor"]] += 1
        # keyed by vendor: one vendor, one partition
        assert partition_of_vendor.setdefault(fields["vendor"], fields["partition"]) == \
            fields["partition"]
    assert seen == Counter(r["VendorID"] for r in sample_rows())
    # the group committed: a second run reads nothing new
    again = run_example("consumer.py", "--timeout", "1", datadir=tmp_path)
    assert "read 0 rides" in again.stdout
    consumer = streamkit.Consumer("yellow_taxi_ride.json", broker="log://",
                                  datadir=str(tmp_path), auto_offset_reset="earliest",
                                  consumer_timeout_ms=500)
    first = next(iter(consumer))
    assert json.loads(first.value)["vendorId"] == int(first.key.decode())
    consumer.close()


def test_stream_taxi_json_prints_every_ride(tmp_path, workers):
    produce_sample(tmp_path)
    worker = workers([sys.executable, str(EXAMPLES / "stream_taxi_json.py"), "worker"],
                     tmp_path)
    text = worker.wait_for(lambda t: t.count("<TaxiRide:") >= 300)
    assert worker.stop() == 0, worker.errors()
    assert text.count("<TaxiRide:") == 300
    assert "vendorId=" in text and "total_amount=" in text


def test_count_vendor_trips_matches_the_csv(tmp_path, workers):
    produce_sample(tmp_path)
    expected = Counter(int(r["VendorID"]) for r in sample_rows())
    worker = workers([sys.executable, str(EXAMPLES / "stream_count_vendor_trips.py"),
                      "worker"], tmp_path)

    def final_counts(text: str) -> dict[int, int]:
        counts: dict[int, int] = {}
        for vendor, n in re.findall(r"vendor (\d+): (\d+) rides", text):
            counts[int(vendor)] = int(n)
        return counts

    worker.wait_for(lambda t: final_counts(t) == dict(expected))
    assert worker.stop() == 0, worker.errors()
    # a restarted worker keeps the table (RocksDB + changelog) and counts nothing twice
    again = workers([sys.executable, str(EXAMPLES / "stream_count_vendor_trips.py"),
                     "worker"], tmp_path)
    text = again.wait_for(lambda t: "vendor_rides:" in t, timeout=20)
    assert again.stop() == 0, again.errors()
    report = text[text.index("vendor_rides:"):].splitlines()[0]
    assert report == f"vendor_rides: {dict(sorted(expected.items()))}"


def test_windowing_prints_each_closed_window_with_its_final_count(tmp_path, workers):
    produce_sample(tmp_path)
    expected: Counter = Counter()
    for r in sample_rows():
        pickup = datetime.fromisoformat(r["tpep_pickup_datetime"])
        expected[(int(r["VendorID"]), f"{pickup:%H:%M}")] += 1
    last_minute = {v: max(m for (vv, m) in expected if vv == v) for v in (1, 2)}
    closable = {k: n for k, n in expected.items() if k[1] != last_minute[k[0]]}
    worker = workers([sys.executable, str(EXAMPLES / "windowing.py"), "worker"], tmp_path)
    pattern = re.compile(r"window (\d\d:\d\d)-(\d\d:\d\d) vendor (\d+): (\d+) rides")
    text = worker.wait_for(lambda t: len(pattern.findall(t)) >= len(closable))
    assert worker.stop() == 0, worker.errors()
    closed = {}
    for start, _end, vendor, n in pattern.findall(text):
        key = (int(vendor), start)
        assert key not in closed, f"window {key} closed twice"
        closed[key] = int(n)
    assert closed == closable


def test_branch_price_splits_at_40(tmp_path, workers):
    produce_sample(tmp_path)
    rows = sample_rows()
    high = sum(float(r["total_amount"]) >= 40 for r in rows)
    worker = workers([sys.executable, str(EXAMPLES / "branch_price.py"), "worker"], tmp_path)

    def read(topic: str) -> list:
        consumer = streamkit.Consumer(topic, broker="log://", datadir=str(tmp_path),
                                      auto_offset_reset="earliest", consumer_timeout_ms=300)
        out = [json.loads(m.value) for m in consumer]
        consumer.close()
        return out

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        admin = streamkit.Admin(broker="log://", datadir=str(tmp_path))
        names = set(admin.list_topics())
        admin.close()
        if {"rides.high_amount", "rides.low_amount"} <= names and \
                len(read("rides.high_amount")) + len(read("rides.low_amount")) >= 300:
            break
        time.sleep(0.3)
    assert worker.stop() == 0, worker.errors()
    high_rides, low_rides = read("rides.high_amount"), read("rides.low_amount")
    assert len(high_rides) == high and len(low_rides) == 300 - high
    assert all(r["total_amount"] >= 40 for r in high_rides)
    assert all(r["total_amount"] < 40 for r in low_rides)


def test_examples_list_their_agents_and_tables_through_app_main(tmp_path):
    done = run_example("stream_taxi_json.py", "agents", datadir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(r"│ @start_reading\s*│ yellow_taxi_ride.json\s*│ <N/A>\s*│", done.stdout)
    done = run_example("stream_count_vendor_trips.py", "tables", datadir=tmp_path)
    assert re.search(r"│ vendor_rides\s*│ int\s*│ <N/A>\s*│ taxi-count-vendor_rides-changelog"
                     r"\s*│ rides per vendor", done.stdout), done.stdout
