"""Deterministic taxi-ride records for the benchmarks (the shape of the NYC CSV)."""
from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta
from typing import Callable

import msgpack

import streamkit


class TaxiRide(streamkit.Record, serializer="json"):
    vendorId: int
    passenger_count: int
    trip_distance: float
    payment_type: int
    total_amount: float
    PULocationID: int
    pickup: datetime | None = None


def rides(n: int, seed: int = 7) -> list[dict]:
    """``n`` ride dicts of about 200 bytes as JSON."""
    rng = random.Random(seed)
    start = datetime(2020, 7, 1, 0, 0, 0)
    out = []
    for i in range(n):
        out.append({
            "vendorId": rng.choice((1, 2)),
            "passenger_count": rng.randint(1, 4),
            "trip_distance": round(rng.uniform(0.3, 20.0), 2),
            "payment_type": rng.choice((1, 2)),
            "total_amount": round(rng.uniform(5.0, 80.0), 2),
            "PULocationID": rng.randint(1, 265),
            "pickup": (start + timedelta(seconds=i * 0.5)).isoformat(sep=" "),
            "store_and_fwd_flag": "N",
            "RatecodeID": 1,
            "congestion_surcharge": 2.5,
        })
    return out


def produce(broker_url: str, topic: str, n: int, serializer: str, partitions: int = 4,
            datadir: str = "stores", key_field: str = "vendorId") -> None:
    """Write ``n`` rides keyed by ``key_field`` (the vendor by default) to ``topic``."""
    codec = streamkit.codecs.get(serializer)
    admin = streamkit.Admin(broker=broker_url, datadir=datadir)
    admin.create_topic(topic, partitions=partitions)
    producer = streamkit.Producer(broker=broker_url, datadir=datadir, linger_ms=1000,
                                  batch_size=2000)
    for ride in rides(n):
        producer.send(topic, value=codec.dumps(ride), key=str(ride[key_field]).encode())
    producer.flush()
    producer.close()


def bare_loop(broker_url: str, topic: str, n: int, serializer: str, datadir: str,
              clock: Callable[[], float] = time.perf_counter,
              decode: Callable[[bytes], dict] | None = None) -> float:
    """Events/s of a plain Python loop over the same rides: the yardstick.

    ``streamkit.Consumer`` batches of 1000, each value decoded into a dict with the
    format's usual Python decoder (``msgpack.unpackb``, ``json.loads``) and one field
    summed; no agent, no Record, no offsets committed. Benchmarks report their rate as
    a ratio to this one, measured in the same run: the machines here are noisy, the
    ratio much less so. ``decode`` replaces the usual decoder.
    """
    if decode is None:
        decode = msgpack.unpackb if serializer == "msgpack" else json.loads
    consumer = streamkit.Consumer(topic, broker=broker_url, datadir=datadir,
                                  auto_offset_reset="earliest", max_poll_records=1000)
    seen, amount = 0, 0.0
    start = clock()
    while seen < n:
        for messages in consumer.poll(100).values():
            for message in messages:
                amount += decode(message.value)["total_amount"]
            seen += len(messages)
    end = clock()
    consumer.close()
    return n / (end - start)
