"""A/B of the embedded log's hot paths between two checkouts of streamkit, interleaved.

    python benchmarks/log_ab.py --old /path/to/other/checkout [--rounds 7]

Each round runs every step once with this checkout and once with the other one (in
fresh processes, alternating which goes first), on a fresh log directory in /tmp, and
a bare Python loop over the same payloads in memory. Prints per step the median
records per second of each side, the median of the per-round ratios new/old (the
machine's speed swings; a ratio measured in one round does not), and each side's ratio
to the bare loop.

Steps: ``Producer.send`` one record at a time with the defaults of each checkout (before
issue 15 ``linger_ms=0``, since then 5 ms with the linger timer) at acks=1 and acks=all,
``Producer.send`` with ``linger_ms=0`` at acks=1 (``send-now``: one append per record),
``Broker.produce`` in batches of 1,000 at acks=1, and reading it all back with
``Broker.fetch``. ``--records send-1=100000`` changes a step's record count.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, shutil, sys, tempfile, time
from streamkit import Producer
from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition

step, n = sys.argv[1], int(sys.argv[2])
payloads = [json.dumps({"vendorId": i % 3 + 1, "total_amount": 5 + i % 311 * 0.21,
                        "PULocationID": i % 263, "seq": i, "pad": "x" * 120}).encode()
            for i in range(n)]
keys = [str(i % 263).encode() for i in range(n)]
root = tempfile.mkdtemp(prefix="log_ab_")
url = f"log://{root}/log"
broker = connect(url, default_partitions=4)
broker.create_topic("t", partitions=4)
if step == "bare":
    start = time.perf_counter()
    out = []
    for k, v in zip(keys, payloads):
        out.append((k, v, len(v)))
    took = time.perf_counter() - start
elif step.startswith("send"):
    # send-now: linger_ms=0, each record its own append (the log's per-append cost)
    producer = Producer(broker=url, acks="all" if step == "send-all" else 1,
                        **({"linger_ms": 0} if step == "send-now" else {}))
    start = time.perf_counter()
    for k, v in zip(keys, payloads):
        producer.send("t", v, key=k)
    producer.flush()
    took = time.perf_counter() - start
    producer.close()
else:
    records = [OutgoingRecord(k, v) for k, v in zip(keys, payloads)]
    start = time.perf_counter()
    for i in range(0, n, 1000):
        broker.produce("t", records[i:i + 1000], acks=1)
    took = time.perf_counter() - start
    if step == "fetch":
        reader = connect(url)
        start = time.perf_counter()
        got = 0
        for p in range(4):
            offset = 0
            while True:
                batch = reader.fetch(TopicPartition("t", p), offset, 1000)
                if not batch:
                    break
                got += len(batch)
                offset = batch[-1].offset + 1
        took = time.perf_counter() - start
        assert got == n, got
broker.close()
shutil.rmtree(root)
print(n / took)
"""

STEPS = {"send-1": 20_000, "send-all": 2_000, "send-now": 20_000, "produce": 200_000,
         "fetch": 200_000}


def run(checkout: Path, step: str, n: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    # (run in the checkout: ``python -c`` puts the working directory first on the path,
    # so run from another checkout it would import that one's streamkit)
    done = subprocess.run([sys.executable, "-c", CHILD, step, str(n)], env=env, check=True,
                          capture_output=True, text=True, cwd=checkout)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, required=True, help="the other checkout")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--records", default="",
                        help="records per step, e.g. send-1=100000,send-all=10000")
    args = parser.parse_args()
    steps = args.steps.split(",")
    for item in filter(None, args.records.split(",")):
        step, _, count = item.partition("=")
        STEPS[step] = int(count)
    rates: dict[str, dict[str, list[float]]] = {s: {"new": [], "old": [], "bare": []}
                                                for s in steps}
    for r in range(args.rounds):
        for step in steps:
            n = STEPS[step]
            sides = [("new", HERE), ("old", args.old)]
            for side, checkout in (sides if r % 2 == 0 else sides[::-1]):
                rates[step][side].append(run(checkout, step, n))
            rates[step]["bare"].append(run(HERE, "bare", n))
    print(f"{args.rounds} rounds, medians; new = {HERE}, old = {args.old}; load average "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'step':<10} {'new rec/s':>12} {'old rec/s':>12} {'new/old':>8} "
          f"{'new/bare':>9} {'old/bare':>9}")
    for step in steps:
        got = rates[step]
        paired = [a / b for a, b in zip(got["new"], got["old"])]
        print(f"{step:<10} {statistics.median(got['new']):>12,.0f} "
              f"{statistics.median(got['old']):>12,.0f} {statistics.median(paired):>8.3f} "
              f"{statistics.median(a / b for a, b in zip(got['new'], got['bare'])):>9.4f} "
              f"{statistics.median(a / b for a, b in zip(got['old'], got['bare'])):>9.4f}")


if __name__ == "__main__":
    main()
