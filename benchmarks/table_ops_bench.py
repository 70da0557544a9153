"""A table's own costs, without the log read and the decoding around them.

One ``Table`` of a real app (``memory://`` broker and store by default, ``--store
rocksdb://`` for RocksDB), driven as an agent drives it (the current stream and batch
set as the stream sets them), ``--events`` operations per run:

- ``hit``: ``table[k] += 1`` over 265 keys already in memory (count per location);
- ``miss``: ``table[k] += 1`` for keys never seen (every key new);
- ``commit``: the ``miss`` events, then one commit's ``flush`` and ``apply_flushed``;
- ``join``: ``commit`` with a second table and their left join (``t.join(u,
  how="left")``): the join's cost per changed key at the commit, over ``commit``'s.

Prints nanoseconds per operation, the best of ``--runs``. On a machine shared with
other work the times scatter; instruction counts do not. Run one workload under
cachegrind at two sizes and divide the difference by the difference in events::

    python benchmarks/table_ops_bench.py --only hit --runs 7
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \\
        python benchmarks/table_ops_bench.py --only hit --events 60000 --runs 1
"""
from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout

import streamkit
from streamkit.streams.event import current_stream
from streamkit.types import TopicPartition


class FakeBatch:
    """What a table reads of a stream's batch: its topic partition."""

    def __init__(self, partition: int) -> None:
        self.tp = TopicPartition("rides", partition)


class FakeStream:
    """What a table reads of the current stream: its batch."""

    batch: Any = None


def run(workload: str, events: int, store: str, tmp: str, run_id: int) -> float:
    app = streamkit.App(f"ops{run_id}", broker=f"memory://ops{run_id}", datadir=tmp,
                        store=store, web_enabled=False)
    table = app.Table("t", default=int, partitions=4)
    tables = [table]
    if workload == "join":
        other = app.Table("u", default=int, partitions=4)
        tables += [other, table.join(other, how="left", name="tu")]
    for each in tables:
        each.open(4)
        each.on_partitions_assigned([TopicPartition("rides", p) for p in range(4)])
    stream = FakeStream()
    current_stream.set(stream)      # type: ignore[arg-type]
    stream.batch = FakeBatch(0)
    if workload == "hit":
        keys = [(i * 7919) % 265 + 1 for i in range(events)]
        for key in range(1, 266):
            table[key] += 1
    else:
        keys = list(range(10**7, 10**7 + events))
    gc.disable()
    start = time.perf_counter()
    for key in keys:
        table[key] += 1
    if workload in ("commit", "join"):
        for each in tables:         # as streamkit.commit.Committer does
            each.flush()
        for each in tables:
            each.apply_flushed()
    elapsed = time.perf_counter() - start
    gc.enable()
    for each in tables:
        each.close()
    return elapsed / events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="hit,miss,commit")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--store", default="memory://")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for workload in args.only.split(","):
            best = min(run(workload, args.events, args.store, tmp, i)
                       for i in range(args.runs))
            print(f"{workload:7s} {best * 1e9:8.0f} ns per event ({args.store}, "
                  f"best of {args.runs})")


if __name__ == "__main__":
    main()
