"""Stateless pipeline throughput: decode-and-count taxi rides through a real agent.

200k rides (~200 B as JSON) keyed by vendor on 4 partitions of the embedded log, typed
``TaxiRide`` values, one ``@app.agent`` with ``async for``. Measures events/s from
worker start to the agent's last event.

    python benchmarks/pipeline_bench.py [--events 200000] [--runs 3] [--serializer json]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout
sys.path.insert(0, str(Path(__file__).parent))

import streamkit  # noqa: E402
from streamkit.worker import Worker  # noqa: E402
from taxi_data import TaxiRide, produce  # noqa: E402


#: wall-clock time by default; ``--cpu`` uses this process's CPU time, steadier on a
#: machine busy with other work
clock = time.perf_counter


def run_once(events: int, serializer: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"log://{tmp}/log"
        produce(url, "rides", events, serializer, datadir=tmp)
        app = streamkit.App("bench", broker=url, datadir=tmp, store="memory://",
                            web_enabled=False)
        rides = app.topic("rides", value_type=TaxiRide, value_serializer=serializer)
        seen = 0
        amount = 0.0
        finished = anyio.Event()
        timing: dict[str, float] = {}

        @app.agent(rides)
        async def count(stream):
            nonlocal seen, amount
            async for ride in stream:
                seen += 1
                amount += ride.total_amount
                if seen == events:
                    timing["end"] = clock()
                    finished.set()

        async def main() -> None:
            worker = Worker(app, install_signal_handlers=False)
            async with anyio.create_task_group() as tg:
                timing["start"] = clock()
                tg.start_soon(worker.run_async)
                await finished.wait()
                worker.stop()

        anyio.run(main)
        return events / (timing["end"] - timing["start"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serializer", default="both", choices=["json", "msgpack", "both"])
    parser.add_argument("--cpu", action="store_true", help="rate per CPU second")
    args = parser.parse_args()
    if args.cpu:
        global clock
        clock = time.process_time
    serializers = ["msgpack", "json"] if args.serializer == "both" else [args.serializer]
    for serializer in serializers:
        rates = [run_once(args.events, serializer) for _ in range(args.runs)]
        print(f"pipeline {serializer:8s} median {statistics.median(rates):>10,.0f} events/s"
              f"  runs: {', '.join(f'{r:,.0f}' for r in rates)}")


if __name__ == "__main__":
    main()
