"""Avro vs JSON vs msgpack on the taxi ride: bytes per record, encode and decode events/s.

    python benchmarks/avro_bench.py [--n 100000] [--runs 5]

The same 100,000 varied rides, as a streamkit Record (vendorId, passenger_count,
trip_distance, payment_type, total_amount, pickup datetime) through ``Serde`` like a
topic does:

- ``json`` / ``msgpack``: the Record with that serializer;
- ``avro``: the Record with ``serializer="avro"`` (schema derived from the fields: long,
  double, timestamp-micros), Confluent framing (5 bytes) included;
- ``avro float/int``: plain dicts with an explicit schema using Avro ``int`` and 32-bit
  ``float`` like the course's taxi_ride_value.avsc (smaller, and lossy: 9.3 reads back as
  9.300000190734863) through ``AvroCodec``, returning dicts.

The registry is an in-memory one (memory:// broker); schema ids are cached after the
first record, so the figures are of the codec alone. Each figure is the median of
``--runs`` runs.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamkit.avro import AvroCodec, Schema, SchemaRegistry, use_registry  # noqa: E402
from streamkit.models import Record  # noqa: E402
from streamkit.serializers import Serde  # noqa: E402
from streamkit.transport import connect  # noqa: E402

FIELDS = dict(vendorId=int, passenger_count=int, trip_distance=float, payment_type=int,
              total_amount=float)


def ride_class(serializer: str) -> type:
    """The taxi Record with this serializer (one class per codec, same fields)."""
    ns: dict[str, Any] = {"__annotations__": {**FIELDS, "pickup": datetime | None},
                          "pickup": None}
    return type(Record)(f"TaxiRide_{serializer}", (Record,), ns, serializer=serializer)


def ride_values(n: int) -> list[dict[str, Any]]:
    start = datetime(2021, 1, 1, tzinfo=timezone.utc)
    return [dict(vendorId=1 + i % 2, passenger_count=1 + i % 5,
                 trip_distance=round(0.5 + (i % 97) * 0.37, 2), payment_type=1 + i % 4,
                 total_amount=round(5 + (i % 211) * 0.41, 2),
                 pickup=start + timedelta(seconds=7 * i)) for i in range(n)]


FLOAT_SCHEMA = Schema.parse({
    "type": "record", "name": "TaxiRideValue", "namespace": "bench",
    "fields": [{"name": "vendorId", "type": "int"},
               {"name": "passenger_count", "type": "int"},
               {"name": "trip_distance", "type": "float"},
               {"name": "payment_type", "type": "int"},
               {"name": "total_amount", "type": "float"},
               {"name": "pickup", "type": ["null", {"type": "long",
                                                    "logicalType": "timestamp-millis"}],
                "default": None}]})


def timed(fn: Callable[[], Any], n: int, runs: int) -> float:
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    n, runs = args.n, args.runs
    use_registry(SchemaRegistry(connect("memory://avro-bench")))
    values = ride_values(n)

    cases = []          # (name, bytes per record, encode fn, decode fn)
    for name in ("json", "msgpack", "avro"):
        cls = ride_class(name)
        serde = Serde(cls)
        records = [cls(**v) for v in values]
        payloads = [serde.dumps(r) for r in records]
        assert serde.loads_many(payloads[:10]) == records[:10]
        cases.append((name, sum(map(len, payloads)) / n,
                      lambda serde=serde, records=records: [serde.dumps(r) for r in records],
                      lambda serde=serde, payloads=payloads: serde.loads_many(payloads)))

    codec = AvroCodec(FLOAT_SCHEMA, subject="bench-value")
    payloads = [codec.dumps(v) for v in values]
    assert abs(codec.loads(payloads[1])["trip_distance"] - values[1]["trip_distance"]) < 1e-6
    cases.append(("avro float/int (dicts)", sum(map(len, payloads)) / n,
                  lambda: [codec.dumps(v) for v in values],
                  lambda: [codec.loads(p) for p in payloads]))

    # runs interleave the codecs, so a burst of load elsewhere on the machine does not
    # land on one codec only
    rates: dict[str, tuple[list[float], list[float]]] = {c[0]: ([], []) for c in cases}
    for _ in range(runs):
        for name, _size, encode, decode in cases:
            rates[name][0].append(timed(encode, n, 1))
            rates[name][1].append(timed(decode, n, 1))
    rows = [(name, size, statistics.median(rates[name][0]),
             statistics.median(rates[name][1])) for name, size, *_ in cases]

    print(f"{n} taxi rides, median of {runs} runs")
    print(f"{'codec':<24} {'B/rec':>7} {'encode ev/s':>13} {'decode ev/s':>13}")
    for name, size, enc, dec in rows:
        print(f"{name:<24} {size:>7.1f} {enc:>13,.0f} {dec:>13,.0f}")


if __name__ == "__main__":
    main()
