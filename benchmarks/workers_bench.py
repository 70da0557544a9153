"""Scaling with worker processes: the pipeline benchmark's agent in 1 and in 2 workers.

Worker processes of one app share the topic's partitions through the consumer group;
on this 2-core machine two workers can use both cores. Rides (msgpack values, 4
partitions) are written first; then N ``python app.py worker`` processes start and
the clock runs until the group has committed every offset (commit interval 0.1 s).
Process start-up and the group join are inside the measured time, so use enough
events for them not to dominate.

    python benchmarks/workers_bench.py [--events 1000000] [--runs 3] [--app count]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout
sys.path.insert(0, str(Path(__file__).parent))

import streamkit  # noqa: E402
from taxi_data import rides  # noqa: E402

APP = textwrap.dedent('''
    import sys
    sys.path.insert(0, {benchmarks!r})
    import streamkit
    from taxi_data import TaxiRide
    app = streamkit.App("scaling", web_enabled=False, commit_interval=0.1)
    topic = app.topic("rides", value_type=TaxiRide, value_serializer="msgpack")
    per_location = app.Table("per_location", default=int)
    total = 0.0

    if {count!r}:
        @app.agent(topic)
        async def count(stream):
            async for ride in stream:
                per_location[ride.PULocationID] += 1
    else:
        @app.agent(topic)
        async def amounts(stream):
            global total
            async for ride in stream:
                total += ride.total_amount

    if __name__ == "__main__":
        app.main()
''')


def produce(url: str, n: int) -> None:
    """``n`` rides keyed by pickup location (so a per-location table is
    co-partitioned with them)."""
    codec = streamkit.codecs.get("msgpack")
    sample = [(str(r["PULocationID"]).encode(), codec.dumps(r)) for r in rides(1000)]
    admin = streamkit.Admin(broker=url)
    admin.create_topic("rides", partitions=4)
    admin.close()
    producer = streamkit.Producer(broker=url, linger_ms=1000, batch_size=5000)
    for i in range(n):
        key, value = sample[i % 1000]
        producer.send("rides", value=value, key=key)
    producer.flush()
    producer.close()


def committed(admin: streamkit.Admin) -> int:
    return sum(o.committed or 0 for o in admin.group_offsets("scaling") if o.topic == "rides")


def run_once(events: int, workers: int, count: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"log://{tmp}/log"
        produce(url, events)
        app_file = Path(tmp) / "scaling_app.py"
        app_file.write_text(APP.format(benchmarks=str(Path(__file__).resolve().parent),
                                       count=count))
        env = dict(os.environ, STREAMKIT_BROKER=url, STREAMKIT_DATADIR=tmp)
        admin = streamkit.Admin(broker=url)
        start = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, str(app_file), "worker"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(workers)]
        try:
            while committed(admin) < events:
                time.sleep(0.02)
            elapsed = time.perf_counter() - start
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(30)
            admin.close()
        return events / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--app", choices=["pipeline", "count"], default="pipeline",
                        help="pipeline: sum a field; count: count per PULocationID in a "
                             "RocksDB table (committed = in the changelog and the store)")
    args = parser.parse_args()
    results: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.runs):          # interleaved, so both see the same machine
        for workers in (1, 2):
            results[workers].append(run_once(args.events, workers, args.app == "count"))
    for workers, rates in results.items():
        print(f"{args.app} {workers} worker(s): median {statistics.median(rates):>10,.0f} "
              f"events/s (wall, start-up included)  runs: "
              f"{', '.join(f'{r:,.0f}' for r in rates)}")
    print(f"ratio 2/1: {statistics.median(results[2]) / statistics.median(results[1]):.2f}")


if __name__ == "__main__":
    main()
