"""Codec and Record throughput: encode and decode events/s per codec.

    python benchmarks/codec_bench.py [--n 200000] [--batch 1000] [--runs 5] [--clock cpu]

A 6-field taxi Record (vendorId:int, passenger_count:int, trip_distance:float,
payment_type:int, total_amount:float, and either pickup:datetime|None given as an ISO
string, or store_and_fwd_flag:str); "str values" sends every value of the first as a
string, as a CSV-fed producer does. For json and msgpack it measures:

- encode: ``Serde.dumps(record)`` per record;
- decode batch: ``Serde.loads_many(payloads)`` over batches of ``--batch`` messages, as
  the stream fetcher does, the decoded batch dropped before the next (as an agent
  would);
- decode one: ``Serde.loads(payload)`` per message;
- plus the bare codec (``codec.loads``) for reference: the floor for that format.

Each figure is the median of ``--runs`` runs; B/rec is the mean payload size.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

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
    """``n`` varied rides (values cycle so payloads differ like real data)."""
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


CLOCK = time.perf_counter


def as_strings(record: Record) -> dict[str, str | None]:
    return {k: None if v is None else v.isoformat(sep=" ") if isinstance(v, datetime)
            else str(v) for k, v in record.asdict().items()}


def median_rate(fn: Callable[[], None], n: int, runs: int) -> float:
    rates = []
    for _ in range(runs):
        start = CLOCK()
        fn()
        rates.append(n / (CLOCK() - start))
    return statistics.median(rates)


def in_batches(fn: Callable[[list], object], items: list, size: int) -> Callable[[], None]:
    batches = [items[i:i + size] for i in range(0, len(items), size)]

    def run() -> None:
        for batch in batches:
            fn(batch)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: process CPU time, steadier on a shared machine")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.perf_counter if args.clock == "wall" else time.process_time
    n, runs = args.n, args.runs
    print(f"{n} records, batches of {args.batch}, median of {runs} runs, "
          f"{args.clock} clock, Python {sys.version.split()[0]}")
    print(f"{'record':14} {'codec':8} {'B/rec':>6} {'encode/s':>11} "
          f"{'decode batch/s':>15} {'decode one/s':>13} {'bare codec/s':>13}")
    for variant in ("with datetime", "no datetime", "str values"):
        records = rides(n, variant != "no datetime")
        cls = type(records[0])
        for codec in ("msgpack", "json"):
            serde = Serde(cls, codec)
            if variant == "str values":  # a CSV-fed producer: every value a string
                payloads = [serde.codec.dumps(as_strings(r)) for r in records]
            else:
                payloads = [serde.dumps(r) for r in records]
            assert serde.loads_many(payloads[:1000]) == records[:1000]
            size = sum(map(len, payloads)) / n
            dumps, loads, bare = serde.dumps, serde.loads, serde.codec.loads
            enc = median_rate(in_batches(lambda b: [dumps(r) for r in b], records,
                                         args.batch), n, runs)
            batch = median_rate(in_batches(serde.loads_many, payloads, args.batch),
                                n, runs)
            one = median_rate(in_batches(lambda b: [loads(p) for p in b], payloads,
                                         args.batch), n, runs)
            floor = median_rate(in_batches(lambda b: [bare(p) for p in b], payloads,
                                           args.batch), n, runs)
            print(f"{variant:14} {codec:8} {size:6.0f} {enc:11,.0f} {batch:15,.0f} "
                  f"{one:13,.0f} {floor:13,.0f}")
    read_cost(n * 10, runs)


def read_cost(n: int, runs: int) -> None:
    """ns per ``ride.vendorId`` read: a Record slot vs a plain object's attribute."""
    class Plain:
        def __init__(self, vendorId: int) -> None:
            self.vendorId = vendorId

    records = rides(1000, True)
    plains = [Plain(r.vendorId) for r in records]

    def reads(objs: list) -> Callable[[], None]:
        def run() -> None:
            for _ in range(n // 10_000):
                for o in objs:
                    o.vendorId; o.vendorId; o.vendorId; o.vendorId; o.vendorId  # noqa
                    o.vendorId; o.vendorId; o.vendorId; o.vendorId; o.vendorId  # noqa
        return run
    total = n // 10_000 * 10_000
    record_ns = 1e9 / median_rate(reads(records), total, runs)
    plain_ns = 1e9 / median_rate(reads(plains), total, runs)
    print(f"field read: Record {record_ns:.1f} ns, plain object {plain_ns:.1f} ns "
          "(including loop overhead)")


if __name__ == "__main__":
    main()
