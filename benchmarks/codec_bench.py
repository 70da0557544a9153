"""Codec and Record throughput: encode and decode events/s per codec.

    python benchmarks/codec_bench.py [--n 100000] [--runs 5]

Decodes bytes into a 6-field taxi Record (with and without the ISO datetime field),
through ``Serde.loads_many`` (the batch path a topic uses) and ``Serde.loads``
(one call per message); encodes Records with ``Serde.dumps``. Prints the median of
``--runs`` runs and the bytes per record.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamkit.models import Record  # noqa: E402
from streamkit.serializers import Serde  # noqa: E402


class TaxiRide(Record):
    vendorId: int
    passenger_count: int
    trip_distance: float
    payment_type: int
    total_amount: float
    pickup: datetime | None = None


class TaxiRideNoTime(Record):
    vendorId: int
    passenger_count: int
    trip_distance: float
    payment_type: int
    total_amount: float
    store_and_fwd_flag: str


def rides(n: int, with_time: bool) -> list[Record]:
    out = []
    for i in range(n):
        common = dict(vendorId=1 + i % 2, passenger_count=1 + i % 5,
                      trip_distance=round(0.5 + (i % 97) * 0.37, 2),
                      payment_type=1 + i % 4,
                      total_amount=round(5 + (i % 211) * 0.41, 2))
        if with_time:
            out.append(TaxiRide(**common, pickup=datetime(
                2020, 7, 1, i // 3600 % 24, i // 60 % 60, i % 60)))
        else:
            out.append(TaxiRideNoTime(**common, store_and_fwd_flag="N"))
    return out


def median_rate(fn, n: int, runs: int) -> float:
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    n, runs = args.n, args.runs
    print(f"{n} records, median of {runs} runs, Python {sys.version.split()[0]}")
    print(f"{'record':14} {'codec':8} {'B/rec':>6} {'encode/s':>12} "
          f"{'decode batch/s':>15} {'decode one/s':>13}")
    for with_time in (True, False):
        records = rides(n, with_time)
        cls = type(records[0])
        for codec in ("msgpack", "json"):
            serde = Serde(cls, codec)
            payloads = [serde.dumps(r) for r in records]
            assert serde.loads_many(payloads[:100]) == records[:100]
            size = sum(map(len, payloads)) / n
            dumps, loads = serde.dumps, serde.loads
            enc = median_rate(lambda: [dumps(r) for r in records], n, runs)
            batch = median_rate(lambda: serde.loads_many(payloads), n, runs)
            one = median_rate(lambda: [loads(p) for p in payloads], n, runs)
            label = "with datetime" if with_time else "no datetime"
            print(f"{label:14} {codec:8} {size:6.0f} {enc:12,.0f} {batch:15,.0f} "
                  f"{one:13,.0f}")


if __name__ == "__main__":
    main()
