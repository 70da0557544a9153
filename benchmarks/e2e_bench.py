"""What a user times: a worker process from its start to the last event.

1M taxi rides (~200 B, msgpack) on 4 partitions of the embedded log, a typed ``Record``,
one agent in a worker process started as a user starts it (``python app.py worker``).
Each workload's time runs from just before the process is started to the agent's last
event (the agent writes both times to a file; the worker is then stopped). Workloads:

- ``stateless``: sum a field of every ride;
- ``count``: count rides per PULocationID in a RocksDB table (topic keyed by it);
- ``window``: count rides per vendor in 1-minute tumbling windows on the pickup time.

The yardstick, timed in the same run after each worker: a bare Python loop over the
same payloads held in memory, ``msgpack.unpackb`` into a dict plus the job's dict work
(for windows, ``datetime.fromisoformat`` of the pickup too). Each row prints the
median rate, the median ratio to the bare loop from process start, and the same from
the first event (what the loop itself costs, start-up left out).

The other rows of issue 15's targets are measured by their own scripts, which this one
runs after its own rows (each prints its bare loop or reference timed in the same run):

- ``startup``: worker process start to first event (``startup_bench.py``);
- ``send``: ``Producer.send()`` one record at a time, defaults, acks=1 and all
  (``log_bench.py --only send``);
- ``latency``: send in one process to the agent in a worker process at 50, 1k and 50k
  events/s, and an idle worker's CPU (``latency_bench.py``);
- ``many-keys``: counting 1M distinct keys into RocksDB, peak RSS
  (``table_bench.py --only many-keys``).

    python benchmarks/e2e_bench.py [--events 1000000] [--runs 3] [--only stateless,count,startup]
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
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import msgpack

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout
sys.path.insert(0, str(HERE))

import streamkit  # noqa: E402
from taxi_data import produce  # noqa: E402

WORKLOADS = ("stateless", "count", "window")

#: the rows measured by their own scripts: name -> the script's arguments
OTHER_ROWS = {
    "startup": ["startup_bench.py"],
    "send": ["log_bench.py", "--only", "send"],
    "latency": ["latency_bench.py"],
    "many-keys": ["table_bench.py", "--only", "many-keys"],
}

#: the agent of each workload, as a user would write it
JOBS = {
    "stateless": """
        @app.agent(rides)
        async def job(stream):
            amount = 0.0
            async for ride in stream:
                amount += ride.total_amount
                seen()
    """,
    "count": """
        per_location = app.Table("per_location", default=int)

        @app.agent(rides)
        async def job(stream):
            async for ride in stream:
                per_location[ride.PULocationID] += 1
                seen()
    """,
    "window": """
        per_minute = app.Table("per_minute", default=int).tumbling(
            60, expires=3600).relative_to_field(TaxiRide.pickup)

        @app.agent(rides)
        async def job(stream):
            async for ride in stream:
                per_minute[ride.vendorId] += 1
                seen()
    """,
}

APP = """
import os
import sys
import time

sys.path.insert(0, {bench!r})
import streamkit
from taxi_data import TaxiRide

app = streamkit.App({app_id!r}, broker={broker!r}, datadir={datadir!r}, store="rocksdb://",
                    web_enabled=False)
rides = app.topic("rides", value_type=TaxiRide, value_serializer="msgpack")
EVENTS = {events}
count = 0
first = 0.0


def seen():
    global count, first
    count += 1
    if count == 1:
        first = time.time()
    if count == EVENTS:
        with open({out!r}, "w") as f:
            f.write(f"{{first}} {{time.time()}}")

{job}

if __name__ == "__main__":
    app.main()
"""


def bare_loop(payloads: list[bytes], workload: str) -> float:
    """Events/s of a plain loop over ``payloads`` in memory doing the job's dict work."""
    unpackb = msgpack.unpackb
    start = time.perf_counter()
    if workload == "stateless":
        amount = 0.0
        for payload in payloads:
            amount += unpackb(payload)["total_amount"]
    elif workload == "count":
        counts: dict[int, int] = defaultdict(int)
        for payload in payloads:
            counts[unpackb(payload)["PULocationID"]] += 1
    else:
        windows: dict[tuple[int, float], int] = defaultdict(int)
        fromisoformat = datetime.fromisoformat
        for payload in payloads:
            ride = unpackb(payload)
            ts = fromisoformat(ride["pickup"]).timestamp()
            windows[(ride["vendorId"], ts - ts % 60)] += 1
    return len(payloads) / (time.perf_counter() - start)


def read_payloads(broker: str, datadir: str, events: int) -> list[bytes]:
    """The values of the topic, as bytes, in the order a consumer reads them."""
    consumer = streamkit.Consumer("rides", broker=broker, datadir=datadir,
                                  auto_offset_reset="earliest", max_poll_records=5000)
    payloads: list[bytes] = []
    while len(payloads) < events:
        for messages in consumer.poll(100).values():
            payloads.extend(m.value for m in messages)
    consumer.close(autocommit=False)
    return payloads


def run_worker(tmp: Path, workload: str, events: int, run: int) -> tuple[float, float]:
    """Seconds from process start to the last event, and from the first to the last."""
    datadir = tmp / f"{workload}{run}"
    out = tmp / f"{workload}{run}.done"
    app_file = tmp / f"{workload}{run}_app.py"
    app_file.write_text(APP.format(bench=str(HERE), app_id=f"e2e-{workload}{run}", broker=f"log://{tmp}/log",
                                   datadir=str(datadir), events=events, out=str(out),
                                   job=textwrap.dedent(JOBS[workload])))
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    start = time.time()
    proc = subprocess.Popen([sys.executable, str(app_file), "worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while not out.exists():
            if proc.poll() is not None:
                raise SystemExit(f"{workload}: the worker exited:\n{proc.stderr.read()}")  # type: ignore[union-attr]
            time.sleep(0.01)
        time.sleep(0.01)  # the two times are written in one call
        first, last = map(float, out.read_text().split())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return last - start, last - first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=",".join((*WORKLOADS, *OTHER_ROWS)))
    args = parser.parse_args()
    chosen = [w for w in args.only.split(",") if w]
    unknown = set(chosen) - set(WORKLOADS) - set(OTHER_ROWS)
    if unknown:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))}")
    workloads = [w for w in chosen if w in WORKLOADS]
    if workloads:
        run_workloads(workloads, args.events, args.runs)
    for row in (r for r in chosen if r in OTHER_ROWS):
        script, *rest = OTHER_ROWS[row]
        # a start-up takes a fraction of a second and scatters most: more runs
        runs = max(args.runs, 9) if row == "startup" else args.runs
        print(f"\n== {row}: python benchmarks/{script} {' '.join(rest)} --runs {runs}",
              flush=True)
        subprocess.run([sys.executable, str(HERE / script), *rest, "--runs", str(runs)],
                       check=True)


def run_workloads(chosen: list[str], events: int, runs: int) -> None:
    """The throughput rows: a worker process per run, then the bare loop."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        broker = f"log://{tmp}/log"
        produce(broker, "rides", events, "msgpack", datadir=str(tmp),
                key_field="PULocationID")
        payloads = read_payloads(broker, str(tmp), events)
        print(f"{events:,} rides, {len(payloads[0])} B each (first), 4 partitions; "
              f"{runs} runs; wall clock", flush=True)
        for workload in chosen:
            measure(tmp, workload, events, runs, lambda w: bare_loop(payloads, w))


def measure(tmp: Path, workload: str, events: int, runs: int,
            bare: Callable[[str], float], before_run: Callable[[int], None] | None = None
            ) -> None:
    """Run ``workload``'s worker ``runs`` times, each followed by the bare loop
    (``bare(workload)``, events/s), and print the medians and each run's ratio."""
    rates, ratios, loop_ratios, bares = [], [], [], []
    for run in range(runs):
        if before_run is not None:
            before_run(run)
        total, loop = run_worker(tmp, workload, events, run)
        rate = bare(workload)
        rates.append(events / total)
        bares.append(rate)
        ratios.append(events / total / rate)
        loop_ratios.append(events / loop / rate)
    med = statistics.median
    print(f"{workload:10} {med(rates):>10,.0f} ev/s from process start; "
          f"bare loop {med(bares):>10,.0f} ev/s; ratio {med(ratios):.3f} "
          f"(runs {', '.join(f'{r:.3f}' for r in ratios)}); "
          f"from the first event {med(loop_ratios):.3f}", flush=True)


if __name__ == "__main__":
    main()
