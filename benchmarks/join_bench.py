"""Stream-table joins (issue 17): a worker enriching rides against a bare loop.

1M taxi rides (~200 B, msgpack) on 4 partitions of the embedded log, a typed
``Record``, in a worker process started as a user starts it, as in ``e2e_bench.py``
(whose worker runner this script uses). Workloads:

- ``join``: ``stream.join(zones, on=TaxiRide.PULocationID)``, an inner join of every
  ride with a 265-zone ``GlobalTable`` (every ride finds its zone);
- ``stream-stream``: ``pickups.join(dropoffs, within=3 h, grace=5 min, how="left")``
  over the same payloads as trips: ``--events``/2 pick-ups (one every 0.5 s) and their
  drop-offs (5 to 30 min later) on two topics of 4 partitions, keyed by trip id,
  each topic in time order; every record joins once. Its bare loop takes the records
  in time order, keeps each pick-up in a dict under its trip id and takes it out at
  its drop-off;
- ``stateless``: the same worker without the join (e2e_bench's row), for the join's
  own cost.

The zone table is written to the GlobalTable's changelog before the worker starts, so
the worker restores it before its first ride (as Kafka Streams bootstraps a global
table). The yardstick, timed in the same run after each worker: a bare Python loop
over the same payloads in memory, ``msgpack.unpackb`` into a dict plus the same
lookup in a dict of the zones. Each row prints medians of ``--runs`` runs (3 by
default: the machine is shared): the rate from process start, the bare loop, their
ratio, and the ratio from the first event (start-up left out).

    python benchmarks/join_bench.py [--events 1000000] [--runs 3] [--only join,join-table,stream-stream,stateless]
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import msgpack

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout
sys.path.insert(0, str(HERE))

import e2e_bench  # noqa: E402
import streamkit  # noqa: E402
from taxi_data import produce  # noqa: E402

#: the zone of each LocationID (the lookup the join and the bare loop make)
ZONES = {i: f"Zone {i}" for i in range(1, 266)}

e2e_bench.JOBS["join"] = """
    zones = app.GlobalTable("zones")

    @app.agent(rides)
    async def job(stream):
        async for ride, zone in stream.join(zones, on=TaxiRide.PULocationID):
            seen()
"""
e2e_bench.JOBS["join-table"] = """
    zones = app.Table("zones")

    @app.agent(rides)
    async def job(stream):
        async for ride, zone in stream.join(zones):
            seen()
"""
e2e_bench.JOBS["stream-stream"] = """
    pickups = app.topic("pickups", key_type=str, value_type=TaxiRide,
                        value_serializer="msgpack")
    dropoffs = app.topic("dropoffs", key_type=str, value_type=TaxiRide,
                         value_serializer="msgpack")

    @app.agent(pickups.join(dropoffs, within=3 * 3600, grace=300, how="left"))
    async def job(stream):
        async for pickup, dropoff in stream:
            seen()      # a pair is two input records
            seen()
"""
WORKLOADS = ("join", "join-table", "stream-stream", "stateless")
#: the seconds between two pick-ups, and from a pick-up to its drop-off (at most)
PICKUP_EVERY = 0.5
TRIP_SECONDS = 1800


def bare_loop(payloads: list[bytes], workload: str) -> float:
    """Events/s of a plain loop over ``payloads`` doing the job's dict work."""
    unpackb = msgpack.unpackb
    zones = ZONES
    found = 0
    records = trip_records(payloads) if workload == "stream-stream" else []
    start = time.perf_counter()
    if workload == "stream-stream":
        # the trips' records in time order (a pick-up, then later its drop-off): each
        # pick-up waits in a dict under its trip id, its drop-off takes it out
        waiting: dict[str, dict] = {}
        for trip, payload in records:
            ride = unpackb(payload)
            if trip in waiting:
                found += waiting.pop(trip)["vendorId"] == ride["vendorId"]
            else:
                waiting[trip] = ride
    elif workload != "stateless":
        for payload in payloads:
            if zones.get(unpackb(payload)["PULocationID"]) is not None:
                found += 1
    else:
        amount = 0.0
        for payload in payloads:
            amount += unpackb(payload)["total_amount"]
    return len(payloads) / (time.perf_counter() - start)


def write_zones(broker: str, datadir: str, app_id: str) -> None:
    """The zones, in the changelog of the app's ``zones`` table (JSON keys and values,
    each in the partition its key hashes to: for the partitioned table that is also
    the partition of the rides with that key, whose keys are the same bytes)."""
    topic = f"{app_id}-zones-changelog"
    admin = streamkit.Admin(broker=broker, datadir=datadir)
    admin.create_topic(topic, partitions=4, config={"cleanup.policy": "compact"})
    admin.close()
    producer = streamkit.Producer(broker=broker, datadir=datadir)
    for location, name in ZONES.items():
        producer.send(topic, key=b"%d" % location, value=f'"{name}"'.encode())
    producer.flush()
    producer.close()


def trip_times(trips: int) -> list[tuple[int, int]]:
    """(pick-up ms, drop-off ms) of each trip: a pick-up every PICKUP_EVERY s, a
    drop-off 5 to 30 minutes later."""
    rng = random.Random(3)
    start = 1_593_561_600_000   # 2020-07-01
    return [(start + int(i * PICKUP_EVERY * 1000),
             start + int(i * PICKUP_EVERY * 1000) + rng.randint(300, TRIP_SECONDS) * 1000)
            for i in range(trips)]


def trip_records(payloads: list[bytes]) -> list[tuple[str, bytes]]:
    """The records of the stream-stream row in time order: (trip id, payload); trip
    i's pick-up and drop-off both carry payload i."""
    trips = len(payloads) // 2
    timed = [(pickup, 0, i) for i, (pickup, _) in enumerate(trip_times(trips))]
    timed += [(dropoff, 1, i) for i, (_, dropoff) in enumerate(trip_times(trips))]
    timed.sort()
    return [(f"t{i}", payloads[i]) for _, _, i in timed]


def write_trips(broker: str, datadir: str, payloads: list[bytes]) -> None:
    """Trip i's pick-up to ``pickups`` and its drop-off to ``dropoffs`` (4 partitions
    each, keyed by trip id), timestamped with their times, each topic in time order."""
    admin = streamkit.Admin(broker=broker, datadir=datadir)
    for topic in ("pickups", "dropoffs"):
        admin.create_topic(topic, partitions=4)
    admin.close()
    producer = streamkit.Producer(broker=broker, datadir=datadir, linger_ms=1000,
                                  batch_size=2000)
    times = trip_times(len(payloads) // 2)
    for side, topic in enumerate(("pickups", "dropoffs")):
        for i, when in sorted(((i, t[side]) for i, t in enumerate(times)),
                              key=lambda pair: pair[1]):
            producer.send(topic, key=b"t%d" % i, value=payloads[i], timestamp_ms=when)
    producer.flush()
    producer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=",".join(WORKLOADS))
    args = parser.parse_args()
    chosen = [w for w in args.only.split(",") if w]
    if set(chosen) - set(WORKLOADS):
        parser.error(f"unknown rows: {', '.join(sorted(set(chosen) - set(WORKLOADS)))}")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        broker = f"log://{tmp}/log"
        produce(broker, "rides", args.events, "msgpack", datadir=str(tmp),
                key_field="PULocationID")
        payloads = e2e_bench.read_payloads(broker, str(tmp), args.events)
        if "stream-stream" in chosen:
            write_trips(broker, str(tmp), payloads)
        print(f"{args.events:,} rides, {len(payloads[0])} B each (first), 4 partitions; "
              f"{args.runs} runs, medians; wall clock", flush=True)
        for workload in chosen:
            def zones(run: int, workload: str = workload) -> None:
                if workload != "stateless":
                    write_zones(broker, str(tmp), f"e2e-{workload}{run}")
            e2e_bench.measure(tmp, workload, args.events, args.runs,
                              lambda w: bare_loop(payloads, w), zones)

if __name__ == "__main__":
    main()
