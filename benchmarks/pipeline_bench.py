"""Stateless pipeline throughput: decode-and-count taxi rides through a real agent.

200k rides (~200 B as JSON) keyed by vendor on 4 partitions of the embedded log, typed
``TaxiRide`` values, one ``@app.agent`` with ``async for``. Measures events/s from
worker start to the agent's last event.

Each run also times a bare Python loop over the same data (``taxi_data.bare_loop``);
the ratio of the two, measured in the same run, is the figure to compare across
machines. ``--bare-decoder ormsgpack`` times the bare loop with ormsgpack instead of
msgpack-python (msgpack values only): the fastest decoder a bare loop could use.

``--guarantee both`` runs the agent under at_least_once and under exactly_once (each
commit one transaction of the log's coordinator) in turn, and prints the ratio of the
two rates per run as well.

    python benchmarks/pipeline_bench.py [--events 200000] [--runs 5] [--serializer json]
                                        [--guarantee at_least_once|exactly_once|both]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import ormsgpack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout
sys.path.insert(0, str(Path(__file__).parent))

import streamkit  # noqa: E402
from streamkit.worker import Worker  # noqa: E402
from taxi_data import TaxiRide, bare_loop, produce  # noqa: E402


#: wall-clock time by default; ``--cpu`` uses this process's CPU time, steadier on a
#: machine busy with other work
clock = time.perf_counter


def run_once(tmp: str, events: int, serializer: str, run: int,
             guarantee: str = "at_least_once") -> float:
    """Events/s of the agent reading the rides in ``tmp`` (a new group each run)."""
    url = f"log://{tmp}/log"
    app = streamkit.App(f"bench{run}-{guarantee}", broker=url, datadir=tmp,
                        store="memory://", web_enabled=False,
                        processing_guarantee=guarantee)
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
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--serializer", default="both", choices=["json", "msgpack", "both"])
    parser.add_argument("--cpu", action="store_true", help="rate per CPU second")
    parser.add_argument("--guarantee", default="at_least_once",
                        choices=["at_least_once", "exactly_once", "both"])
    parser.add_argument("--bare-decoder", choices=["usual", "ormsgpack"], default="usual",
                        help="decoder of the bare loop's msgpack values")
    args = parser.parse_args()
    if args.cpu:
        global clock
        clock = time.process_time
    serializers = ["msgpack", "json"] if args.serializer == "both" else [args.serializer]
    for serializer in serializers:
        rates: list[float] = []
        bare: list[float] = []
        ratios: list[float] = []
        eos: list[float] = []
        fast = ormsgpack.unpackb if (args.bare_decoder == "ormsgpack"
                                     and serializer == "msgpack") else None
        with tempfile.TemporaryDirectory() as tmp:
            produce(f"log://{tmp}/log", "rides", args.events, serializer, datadir=tmp)
            for run in range(args.runs):  # interleaved: both see the same machine state
                first = "exactly_once" if args.guarantee == "exactly_once" \
                    else "at_least_once"
                rates.append(run_once(tmp, args.events, serializer, run, first))
                if args.guarantee == "both":
                    eos.append(run_once(tmp, args.events, serializer, run,
                                        "exactly_once"))
                bare.append(bare_loop(f"log://{tmp}/log", "rides", args.events,
                                      serializer, tmp, clock, fast))
                ratios.append(rates[-1] / bare[-1])
        print(f"pipeline {serializer:8s} median {statistics.median(rates):>10,.0f} events/s"
              f"  runs: {', '.join(f'{r:,.0f}' for r in rates)}")
        print(f"bare     {serializer:8s} median {statistics.median(bare):>10,.0f} events/s"
              f"  runs: {', '.join(f'{r:,.0f}' for r in bare)}")
        print(f"pipeline/bare {serializer:8s} median {statistics.median(ratios):.3f}"
              f"  runs: {', '.join(f'{r:.3f}' for r in ratios)}")
        if eos:
            cost = [e / a for e, a in zip(eos, rates, strict=True)]
            print(f"exactly_once {serializer:8s} median {statistics.median(eos):>10,.0f} "
                  f"events/s  runs: {', '.join(f'{r:,.0f}' for r in eos)}")
            print(f"exactly_once/at_least_once {serializer:8s} median "
                  f"{statistics.median(cost):.3f}  runs: "
                  f"{', '.join(f'{r:.3f}' for r in cost)}")


if __name__ == "__main__":
    main()
