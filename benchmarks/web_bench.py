"""Does the web server slow the stream down? Taxi rides counted into a table per
PULocationID (265 keys), on 4 partitions of the embedded log, in three modes:

- ``off``: ``App(web_enabled=False)``;
- ``on``: the web server running, nobody asking;
- ``scraped``: the web server answering a separate process that polls ``/api/status``,
  ``/metrics`` and one table key every ``--poll`` seconds (default 0.25 s: four times
  what an open dashboard plus a Prometheus scrape ask for).

Modes run interleaved (off, on, scraped, off, ...) so drift of a busy machine hits
them alike; each run is timed from the agent's first event to its last (worker and
web server start-up are not the stream's speed). Prints the median events/s of each
mode and its ratio to ``off``.

    python benchmarks/web_bench.py [--events 200000] [--runs 5] [--poll 0.25] [--cpu]
"""
from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout
sys.path.insert(0, str(Path(__file__).parent))

import streamkit  # noqa: E402
from streamkit.worker import Worker  # noqa: E402
from taxi_data import TaxiRide, produce  # noqa: E402

#: wall-clock time by default; ``--cpu`` uses this process's CPU time (the worker's
#: own cost, steadier on a busy machine; the poller's CPU is not counted)
clock = time.perf_counter

POLLER = textwrap.dedent("""
    import sys, time, httpx
    base, interval = sys.argv[1], float(sys.argv[2])
    with httpx.Client(base_url=base, timeout=5) as client:
        while True:
            for path in ("/api/status", "/metrics", "/table/locations/1"):
                try:
                    client.get(path)
                except httpx.HTTPError:
                    pass
            time.sleep(interval)
""")


def run_once(tmp: str, url: str, events: int, mode: str, poll: float, run: int) -> float:
    port = free_port()
    app = streamkit.App(f"webbench{run}{mode}", broker=url, datadir=tmp,
                        store="memory://", web_enabled=mode != "off", web_port=port)
    rides = app.topic("rides", value_type=TaxiRide)
    locations = app.Table("locations", default=int, key_type=int)
    seen = 0
    finished = anyio.Event()
    timing: dict[str, float] = {}

    @app.agent(rides)
    async def count(stream):
        nonlocal seen
        async for ride in stream:
            if not seen:
                timing["start"] = clock()
            locations[ride.PULocationID] += 1
            seen += 1
            if seen == events:
                timing["end"] = clock()
                finished.set()

    poller: subprocess.Popen | None = None
    if mode == "scraped":
        # started (and warmed up) before the worker, so its start-up is not timed
        poller = subprocess.Popen([sys.executable, "-c", POLLER,
                                   f"http://127.0.0.1:{port}", str(poll)])
        time.sleep(0.5)

    async def main() -> None:
        worker = Worker(app, install_signal_handlers=False)
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run_async)
            await finished.wait()
            worker.stop()

    try:
        anyio.run(main)
    finally:
        if poller is not None:
            poller.kill()
            poller.wait()
    return events / (timing["end"] - timing["start"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--poll", type=float, default=0.25)
    parser.add_argument("--cpu", action="store_true", help="rate per CPU second")
    args = parser.parse_args()
    if args.cpu:
        global clock
        clock = time.process_time
    modes = ("off", "on", "scraped")
    rates: dict[str, list[float]] = {m: [] for m in modes}
    import streamkit.web.server  # noqa: F401 - imported up front, not inside a timed run
    with tempfile.TemporaryDirectory() as tmp:
        url = f"log://{tmp}/log"
        produce(url, "rides", args.events, "json", datadir=tmp)
        for run in range(args.runs):
            for mode in modes:
                rates[mode].append(run_once(tmp, url, args.events, mode, args.poll, run))
    base = statistics.median(rates["off"])
    for mode in modes:
        median = statistics.median(rates[mode])
        print(f"web {mode:8s} median {median:>10,.0f} events/s  ratio {median / base:5.3f}"
              f"  runs: {', '.join(f'{r:,.0f}' for r in rates[mode])}")


if __name__ == "__main__":
    main()
