"""Stateful throughput: tables and windows on the taxi workload, and table restart time.

- ``count``: count rides per PULocationID in a RocksDB table (topic keyed by
  PULocationID, msgpack values), events/s from worker start to the last event, counted
  only once every table change is flushed to its changelog and store;
- ``count-group-by``: the same from a vendor-keyed topic through ``group_by``;
- ``window``: per-vendor 1-minute tumbling windows on the pickup time;
- ``restart``: a worker builds a table of 1M keys, is SIGKILLed after its last commit,
  and a new worker process is timed from start until it is ready (tables restored);
- ``many-keys``: count ``--keys`` rides (1M by default) each with a key of its own (a
  unique ``ride_id``, every key new) in a RocksDB table, in a worker subprocess timed
  from worker start to the last event and a final commit; printed with the ratio to a
  bare loop over the same msgpack payloads held in memory (``msgpack.unpackb`` and
  counting the id in a dict) timed in the same run, and the worker process's peak RSS.

    python benchmarks/table_bench.py [--events 200000] [--runs 3] [--only count,window]
    python benchmarks/table_bench.py --only many-keys [--keys 1000000] [--runs 3]
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
from operator import attrgetter
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout
sys.path.insert(0, str(Path(__file__).parent))

import streamkit  # noqa: E402
from streamkit.worker import Worker  # noqa: E402
import msgpack  # noqa: E402

from taxi_data import TaxiRide, bare_loop, produce, rides  # noqa: E402


#: wall-clock time by default; ``--cpu`` uses this process's CPU time, steadier on a
#: machine busy with other work
clock = time.perf_counter


def run_app(tmp: str, events: int, mode: str, run: int,
            guarantee: str = "at_least_once") -> float:
    """Events/s of the table agent over the rides in ``tmp`` (a new app each run)."""
    url = f"log://{tmp}/log"
    app = streamkit.App(f"bench{run}-{guarantee}", broker=url, datadir=tmp,
                        store="rocksdb://", web_enabled=False,
                        processing_guarantee=guarantee)
    topic = app.topic("rides", value_type=TaxiRide, value_serializer="msgpack")
    done = anyio.Event()
    seen = 0
    if mode == "window":
        table = app.Table("per_minute", default=int).tumbling(
            60, expires=3600).relative_to_field(TaxiRide.pickup)
    else:
        table = app.Table("per_location", default=int)

    key_of = attrgetter("vendorId" if mode == "window" else "PULocationID")

    @app.agent(topic)
    async def count(stream):
        nonlocal seen
        if mode == "count-group-by":
            stream = stream.group_by(TaxiRide.PULocationID)
        async for ride in stream:
            table[key_of(ride)] += 1
            seen += 1
            if seen == events:
                done.set()

    async def main() -> float:
        worker = Worker(app, install_signal_handlers=False)
        async with anyio.create_task_group() as tg:
            start = clock()
            tg.start_soon(worker.run_async)
            await done.wait()
            worker.commit()   # every change in the changelog and the store
            elapsed = clock() - start
            worker.stop()
        return elapsed

    elapsed = anyio.run(main)
    return events / elapsed


RESTART_APP = textwrap.dedent('''
    import streamkit
    app = streamkit.App("restart", web_enabled=False, commit_interval=0.5)
    big = app.Table("big", default=int)
    @app.agent(app.topic("keys", value_type=int))
    async def fill(stream):
        async for n in stream:
            big[n] = n
    if __name__ == "__main__":
        app.main()
''')


def run_restart(keys: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        app_file = Path(tmp) / "restart_app.py"
        app_file.write_text(RESTART_APP)
        env = dict(os.environ, STREAMKIT_DATADIR=tmp, STREAMKIT_BROKER=f"log://{tmp}/log")
        admin = streamkit.Admin(broker=f"log://{tmp}/log")
        admin.create_topic("keys", partitions=4)
        producer = streamkit.Producer(broker=f"log://{tmp}/log", linger_ms=1000,
                                      batch_size=5000)
        for n in range(keys):
            producer.send("keys", value=str(n).encode(), key=str(n).encode())
        producer.flush()
        first = subprocess.Popen([sys.executable, str(app_file), "worker"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            time.sleep(0.5)
            offsets = admin.group_offsets("restart")
            if offsets and sum(o.lag for o in offsets if o.topic == "keys") == 0 and \
                    sum(o.committed or 0 for o in offsets if o.topic == "keys") == keys:
                break
        time.sleep(1.0)  # past the last commit
        first.send_signal(signal.SIGKILL)
        first.wait()
        start = time.perf_counter()
        second = subprocess.Popen([sys.executable, str(app_file), "worker"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)
        assert second.stderr is not None
        for line in second.stderr:
            if "ready" in line:
                break
        elapsed = time.perf_counter() - start
        second.send_signal(signal.SIGTERM)
        second.wait(30)
        admin.close()
        return elapsed


MANY_KEYS_APP = textwrap.dedent('''
    import sys, time
    import anyio
    import streamkit
    from streamkit.worker import Worker

    class Ride(streamkit.Record, serializer="msgpack"):
        ride_id: int
        vendorId: int
        total_amount: float

    events, run = int(sys.argv[1]), sys.argv[2]
    app = streamkit.App(f"manykeys{run}", web_enabled=False, store="rocksdb://")
    table = app.Table("per_ride", default=int)
    done = anyio.Event()
    seen = 0

    @app.agent(app.topic("rides", value_type=Ride, value_serializer="msgpack"))
    async def count(stream):
        global seen
        async for ride in stream:
            table[ride.ride_id] += 1
            seen += 1
            if seen == events:
                done.set()

    async def main():
        worker = Worker(app, install_signal_handlers=False)
        async with anyio.create_task_group() as tg:
            start, start_cpu = time.perf_counter(), time.process_time()
            tg.start_soon(worker.run_async)
            await done.wait()
            worker.commit()   # every change in the changelog and the store
            elapsed = time.perf_counter() - start, time.process_time() - start_cpu
            worker.stop()
        return elapsed

    (elapsed, cpu) = anyio.run(main)
    # the process's own peak (a forked child's ru_maxrss counts the parent's pages
    # from before its exec)
    status = open("/proc/self/status").read()
    peak_kb = int(status.split("VmHWM:")[1].split()[0])
    print(elapsed, cpu, peak_kb)
''')


def many_keys_payloads(keys: int) -> list[bytes]:
    """``keys`` taxi rides (msgpack, about 210 bytes) each with a ``ride_id`` of its
    own."""
    payloads = []
    for ride_id, ride in enumerate(rides(keys)):
        ride["ride_id"] = ride_id
        payloads.append(msgpack.packb(ride))
    return payloads


def bare_dict_loop(payloads: list[bytes]) -> float:
    """Events/s of a plain loop over the payloads in memory: decode, count the id in a
    dict (the yardstick of ``many-keys``)."""
    unpackb, counts = msgpack.unpackb, {}
    start = clock()
    for payload in payloads:
        ride_id = unpackb(payload)["ride_id"]
        counts[ride_id] = counts.get(ride_id, 0) + 1
    elapsed = clock() - start
    assert len(counts) == len(payloads)
    return len(payloads) / elapsed


def run_many_keys(tmp: str, payloads: list[bytes], run: int) -> tuple[float, float]:
    """(events/s, or per CPU second with ``--cpu``; peak RSS in MB: VmHWM) of a
    worker subprocess counting every ride by id in a
    new RocksDB table (a new data directory per run, same log)."""
    app_file = Path(tmp) / "many_keys_app.py"
    app_file.write_text(MANY_KEYS_APP)
    datadir = Path(tmp) / f"run{run}"
    env = dict(os.environ, STREAMKIT_DATADIR=str(datadir),
               STREAMKIT_BROKER=f"log://{tmp}/log")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent)]
        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    # each run is a new app id: a new group reads the rides from the start
    child = subprocess.Popen(
        [sys.executable, str(app_file), str(len(payloads)), str(run)], env=env,
        stdout=subprocess.PIPE, text=True, cwd=tmp)
    assert child.stdout is not None
    out = child.stdout.read()
    if child.wait() != 0:
        raise RuntimeError(f"many-keys worker exited with {child.returncode}")
    elapsed, cpu, peak_kb = out.strip().splitlines()[-1].split()
    seconds = float(cpu) if clock is time.process_time else float(elapsed)
    return len(payloads) / seconds, int(peak_kb) / 1024


def many_keys(keys: int, runs: int) -> None:
    payloads = many_keys_payloads(keys)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"log://{tmp}/log"
        admin = streamkit.Admin(broker=url, datadir=tmp)
        admin.create_topic("rides", partitions=4)
        admin.close()
        producer = streamkit.Producer(broker=url, datadir=tmp, linger_ms=1000,
                                      batch_size=2000)
        for ride_id, payload in enumerate(payloads):
            producer.send("rides", value=payload, key=str(ride_id).encode())
        producer.flush()
        producer.close()
        rates, ratios, peaks = [], [], []
        for run in range(runs):  # interleaved with the yardstick
            rate, peak = run_many_keys(tmp, payloads, run)
            rates.append(rate)
            peaks.append(peak)
            ratios.append(rate / bare_dict_loop(payloads))
    print(f"{'many-keys':15s} median {statistics.median(rates):>10,.0f} events/s"
          f"  runs: {', '.join(f'{r:,.0f}' for r in rates)}")
    print(f"{'many-keys/bare':15s} median {statistics.median(ratios):>10.2f}"
          f"  runs: {', '.join(f'{r:.2f}' for r in ratios)}")
    print(f"{'many-keys RSS':15s} median {statistics.median(peaks):>10.0f} MB"
          f"  runs: {', '.join(f'{p:.0f}' for p in peaks)}  (worker peak)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="count,count-group-by,window,restart")
    parser.add_argument("--cpu", action="store_true", help="rate per CPU second")
    parser.add_argument("--guarantee", default="at_least_once",
                        choices=["at_least_once", "exactly_once", "both"],
                        help="both: each run under at_least_once, then exactly_once")
    args = parser.parse_args()
    if args.cpu:
        global clock
        clock = time.process_time
    for mode in args.only.split(","):
        if mode == "many-keys":
            many_keys(args.keys, args.runs)
            continue
        if mode == "restart":
            times = [run_restart(args.keys) for _ in range(args.runs)]
            print(f"restart {args.keys:,} keys: median {statistics.median(times):.2f} s"
                  f"  runs: {', '.join(f'{t:.2f}' for t in times)}")
            continue
        rates: list[float] = []
        ratios: list[float] = []
        eos: list[float] = []
        first = "exactly_once" if args.guarantee == "exactly_once" else "at_least_once"
        with tempfile.TemporaryDirectory() as tmp:
            url = f"log://{tmp}/log"
            produce(url, "rides", args.events, "msgpack", datadir=tmp,
                    key_field="PULocationID" if mode == "count" else "vendorId")
            for run in range(args.runs):  # interleaved with the yardstick
                rates.append(run_app(tmp, args.events, mode, run, first))
                if args.guarantee == "both":
                    eos.append(run_app(tmp, args.events, mode, run, "exactly_once"))
                ratios.append(rates[-1] / bare_loop(url, "rides", args.events, "msgpack",
                                                    tmp, clock))
        print(f"{mode:15s} median {statistics.median(rates):>10,.0f} events/s"
              f"  runs: {', '.join(f'{r:,.0f}' for r in rates)}")
        print(f"{mode + '/bare':15s} median {statistics.median(ratios):>10.3f}"
              f"  runs: {', '.join(f'{r:.3f}' for r in ratios)}")
        if eos:
            cost = [e / a for e, a in zip(eos, rates, strict=True)]
            print(f"{mode + ' eos':15s} median {statistics.median(eos):>10,.0f} events/s"
                  f"  runs: {', '.join(f'{r:,.0f}' for r in eos)}")
            print(f"{mode + ' eos/alo':15s} median {statistics.median(cost):>10.3f}"
                  f"  runs: {', '.join(f'{r:.3f}' for r in cost)}")


if __name__ == "__main__":
    main()
