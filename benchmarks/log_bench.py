"""Throughput of the embedded log: produce (acks 0/1/all, one and two producer processes,
``streamkit.Producer.send`` one record at a time with its defaults) and consume
(Broker.fetch, group poll, streamkit.Consumer), in records/s.

    python benchmarks/log_bench.py [--records 200000] [--runs 5] [--batch 1000]
    python benchmarks/log_bench.py --only send       # the Producer.send rows alone

Each figure is the median of ``--runs`` runs, each on a fresh log directory in /tmp:
records per wall-clock second, and records per CPU-second of the measuring process
(which other processes sharing the machine do not distort).
Records are ~200-byte JSON taxi rides keyed by vendor/location, 4 partitions. The
``Producer.send`` rows also give their ratio to a bare Python loop over the same payloads
in memory, timed right after each run in the same process (median of the per-run ratios).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamkit  # noqa: E402
from streamkit.transport import connect  # noqa: E402
from streamkit.types import OutgoingRecord, TopicPartition  # noqa: E402

TOPIC = "rides"
PARTITIONS = 4


def make_records(n: int, seed: int = 0) -> list[OutgoingRecord]:
    out = []
    for i in range(n):
        ride = {"vendorId": i % 3 + 1, "passenger_count": i % 5 + 1,
                "trip_distance": round((i % 97) * 0.37, 2), "payment_type": i % 4,
                "total_amount": round(5 + (i % 311) * 0.21, 2),
                "pickup": "2019-01-01T00:%02d:%02d" % (i // 60 % 60, i % 60),
                "dropoff": "2019-01-01T00:%02d:%02d" % ((i // 60 + 9) % 60, i % 60),
                "PULocationID": i % 263, "DOLocationID": (i * 7) % 263, "seq": seed + i}
        out.append(OutgoingRecord(str(i % 263).encode(), json.dumps(ride).encode()))
    return out


def produce(url: str, records: list[OutgoingRecord], acks, batch: int) -> None:
    broker = connect(url, default_partitions=PARTITIONS)
    for start in range(0, len(records), batch):
        broker.produce(TOPIC, records[start:start + batch], acks=acks)
    broker.close()


def _child(url: str, n: int, seed: int, acks, batch: int, ready, go) -> None:
    records = make_records(n, seed)
    ready.wait()
    go.wait()
    produce(url, records, acks, batch)


def fresh(root: Path) -> str:
    shutil.rmtree(root, ignore_errors=True)
    url = f"log://{root}"
    connect(url).create_topic(TOPIC, partitions=PARTITIONS)
    return url


class Clock:
    """Wall time and CPU time (this process and its waited-for children) of a block."""

    def __enter__(self) -> Clock:
        self.wall = time.perf_counter()
        self.cpu = _cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = _cpu() - self.cpu


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bench_produce_one(root: Path, records, acks, batch: int) -> tuple[float, float]:
    url = fresh(root)
    with Clock() as clock:
        produce(url, records, acks, batch)
    return len(records) / clock.wall, len(records) / clock.cpu


def bench_produce_two(root: Path, n: int, acks, batch: int) -> tuple[float, float]:
    url = fresh(root)
    ctx = mp.get_context("fork")
    ready = ctx.Barrier(3)
    go = ctx.Barrier(3)
    procs = [ctx.Process(target=_child, args=(url, n // 2, k * n, acks, batch, ready, go))
             for k in range(2)]
    for proc in procs:
        proc.start()
    ready.wait()
    with Clock() as clock:
        go.wait()
        for proc in procs:
            proc.join()
    total = sum(connect(url).offsets(TopicPartition(TOPIC, p))[1] for p in range(PARTITIONS))
    assert total == n // 2 * 2, (total, n)
    # children's CPU includes building their records before the barrier: not counted
    return total / clock.wall, float("nan")


def bench_producer_client(root: Path, n: int, acks, queue) -> None:
    """(In a fresh process, holding only the payloads, as a user's script would.)
    ``streamkit.Producer.send`` one record at a time with the default settings (the
    linger timer, ``batch_size``), then ``flush``; and the ratio to ``bare_loop`` over
    the same payloads timed right after, in the same process."""
    pairs = [(r.key, r.value) for r in make_records(n)]
    url = fresh(root)
    producer = streamkit.Producer(broker=url, acks=acks)
    with Clock() as clock:
        for key, value in pairs:
            producer.send(TOPIC, value, key=key)
        producer.flush()
    producer.close()
    bare = bare_loop(pairs)
    queue.put((n / clock.wall, n / clock.cpu, bare / clock.wall))


def send_rows(root: Path, n: int) -> dict[str, tuple[float, ...]]:
    """The ``Producer.send`` rows of one run, each in a fresh process."""
    ctx = mp.get_context("spawn")
    rows = {}
    for acks in (1, "all"):
        queue = ctx.Queue()
        proc = ctx.Process(target=bench_producer_client, args=(root, n, acks, queue))
        proc.start()
        rows[f"Producer.send acks={acks}, defaults (client, one by one)"] = queue.get()
        proc.join()
    return rows


def bare_loop(pairs: list[tuple[bytes, bytes]], repeat: int = 3) -> float:
    """Seconds a bare Python loop takes over the payloads in memory: what a send loop
    would cost if sending were free (a tuple per record into a list). The median of
    ``repeat`` loops: one lasts only tens of milliseconds."""
    took = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = []
        for key, value in pairs:
            out.append((key, value, len(value)))
        took.append(time.perf_counter() - start)
        del out
    return statistics.median(took)


def bench_fetch(url: str, n: int, max_records: int = 1000) -> tuple[float, float]:
    broker = connect(url)
    count = 0
    with Clock() as clock:
        for p in range(PARTITIONS):
            tp = TopicPartition(TOPIC, p)
            offset = 0
            while True:
                messages = broker.fetch(tp, offset, max_records)
                if not messages:
                    break
                count += len(messages)
                offset = messages[-1].offset + 1
    assert count == n, (count, n)
    broker.close()
    return count / clock.wall, count / clock.cpu


def bench_group_poll(url: str, n: int, group: str) -> tuple[float, float]:
    broker = connect(url)
    member = broker.group_consumer(group, [TOPIC])
    count = 0
    with Clock() as clock:
        while count < n:
            count += len(member.poll(max_records=1000, timeout=0.5))
    member.close()
    broker.close()
    return count / clock.wall, count / clock.cpu


def bench_consumer_client(url: str, n: int) -> tuple[float, float]:
    consumer = streamkit.Consumer(TOPIC, broker=url, auto_offset_reset="earliest",
                                  consumer_timeout_ms=500)
    count = 0
    with Clock() as clock:
        for _ in consumer:
            count += 1
            if count == n:
                break
    consumer.close()
    return count / clock.wall, count / clock.cpu


def consume_all(url: str, n: int, group: str, queue) -> None:
    queue.put({"consume Broker.fetch (raw)": bench_fetch(url, n),
               "consume group poll (raw)": bench_group_poll(url, n, group),
               "consume streamkit.Consumer iterator": bench_consumer_client(url, n)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--only", choices=["send"], default=None,
                        help="run only the Producer.send rows")
    args = parser.parse_args()
    n, batch = args.records, args.batch
    records = make_records(n)
    size = sum(len(r.value) + len(r.key) for r in records) / n
    print(f"{n} records of ~{size:.0f} B, {PARTITIONS} partitions, batches of {batch}, "
          f"median of {args.runs} runs, {os.cpu_count()} CPUs")
    root = Path(tempfile.mkdtemp(prefix="log_bench_", dir="/tmp"))
    results: dict[str, list[tuple[float, ...]]] = {}
    load = os.getloadavg()[0]

    def record(name: str, value: tuple[float, ...]) -> None:
        results.setdefault(name, []).append(value)

    try:
        for run in range(args.runs):
            if args.only == "send":
                for name, value in send_rows(root / "c", n).items():
                    record(name, value)
                continue
            for acks in (0, 1, "all"):
                record(f"produce acks={acks}, 1 producer (Broker.produce)",
                       bench_produce_one(root / "p", records, acks, batch))
            for acks in (1, "all"):
                record(f"produce acks={acks}, 2 producer processes",
                       bench_produce_two(root / "p2", n, acks, batch))
            record("produce acks=all, 2 producer processes, batches of 100",
                   bench_produce_two(root / "p3", n, "all", 100))
            for name, value in send_rows(root / "c", n).items():
                record(name, value)
            url = fresh(root / "r")
            produce(url, records, 1, batch)
            # consumers run in a fresh process: one holding the producer's 200k records
            # would measure Python's GC walking them, not the log
            ctx = mp.get_context("spawn")
            queue = ctx.Queue()
            proc = ctx.Process(target=consume_all, args=(url, n, f"g{run}", queue))
            proc.start()
            for name, value in queue.get().items():
                record(name, value)
            proc.join()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    width = max(map(len, results))
    print(f"{'':<{width}}  {'records/s':>12}  {'per CPU-s':>12}  {'/ bare loop':>11}")
    for name, values in results.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        cpu_text = "-" if cpu != cpu else f"{cpu:,.0f}"
        # (the median of the per-run ratios: each run's own bare loop)
        ratio = f"{statistics.median(v[2] for v in values):.4f}" if len(values[0]) > 2 \
            else "-"
        print(f"{name:<{width}}  {wall:>12,.0f}  {cpu_text:>12}  {ratio:>11}")
    print(f"load average (1 min) before/after: {load:.2f} / {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
