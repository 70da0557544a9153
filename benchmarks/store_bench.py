"""Table store throughput: batched applies and point gets, memory and RocksDB.

    python benchmarks/store_bench.py [--changes 1000000] [--batch 1000] [--partitions 4]
                                     [--runs 5] [--layouts]

Keys are ~8 bytes, values msgpack-encoded ints (~5-9 bytes), as a counting table writes.
Each run opens a fresh store in a temporary directory, applies ``--changes`` changes in
batches of ``--batch`` (round-robin over partitions, each batch with its changelog
offset), then does the same number of point gets of existing keys. Prints changes/s and
gets/s per run and the median. ``--layouts`` also measures the alternative RocksDB layout
(a partition prefix on every key in one column family) that stores.py does not use, to
back the layout decision (docs/decisions/301-store-layout.md).
"""
from __future__ import annotations

import argparse
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamkit.tables.stores import open_store  # noqa: E402


class PrefixLayoutStore:
    """The rejected layout, for comparison only: one column family, keys prefixed with
    a 4-byte partition number, offsets under a reserved prefix."""

    def __init__(self, path: Path) -> None:
        from rocksdict import Options, Rdict, WriteOptions

        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_max_background_jobs(2)
        self._db = Rdict(str(path), options)
        self._wo = WriteOptions()
        self._wo.sync = False

    def apply(self, partition: int, keys, values, offset: int) -> None:
        from rocksdict import WriteBatch

        prefix = struct.pack(">I", partition)
        batch = WriteBatch(raw_mode=True)
        for key, value in zip(keys, values):
            if value is None:
                batch.delete(prefix + key)
            else:
                batch.put(prefix + key, value)
        batch.put(b"\xff\xff\xff\xff" + prefix, struct.pack(">q", offset))
        self._db.write(batch, self._wo)

    def get(self, partition: int, key: bytes):
        return self._db.get(struct.pack(">I", partition) + key)

    def close(self) -> None:
        self._db.close()


def make_batches(changes: int, batch: int, partitions: int):
    keys = [b"k%07d" % i for i in range(changes)]          # 8 bytes
    values = [msgpack.packb(i * 7919) for i in range(changes)]
    out = []
    for n, lo in enumerate(range(0, changes, batch)):
        out.append((n % partitions, (keys[lo:lo + batch], values[lo:lo + batch]), n))
    return out, keys


def run_once(kind: str, batches, keys, partitions: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="store_bench") as tmp:
        if kind == "prefix":
            store = PrefixLayoutStore(Path(tmp) / "bench.db")
        else:
            store = open_store(f"{kind}://", tmp, "bench", partitions)
        t0 = time.perf_counter()
        for partition, changes, offset in batches:
            store.apply(partition, *changes, offset)
        applied = sum(len(c[0]) for _, c, _ in batches) / (time.perf_counter() - t0)

        get = store.get
        lookups = [(partition, key) for partition, changes, _ in batches for key in changes[0]]
        t0 = time.perf_counter()
        for partition, key in lookups:
            if get(partition, key) is None:
                raise AssertionError(f"{kind}: key {key!r} missing in partition {partition}")
        gets = len(lookups) / (time.perf_counter() - t0)
        store.close()
    return applied, gets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--layouts", action="store_true",
                        help="also measure the partition-prefix RocksDB layout")
    args = parser.parse_args()

    batches, keys = make_batches(args.changes, args.batch, args.partitions)
    kinds = ["memory", "rocksdb"] + (["prefix"] if args.layouts else [])
    print(f"{args.changes} changes in batches of {args.batch} over {args.partitions} "
          f"partitions, {args.runs} runs")
    for kind in kinds:
        results = [run_once(kind, batches, keys, args.partitions) for _ in range(args.runs)]
        for applied, gets in results:
            print(f"  {kind:8s} apply {applied:12,.0f} changes/s   get {gets:12,.0f} gets/s")
        print(f"{kind:8s} median: apply {statistics.median(r[0] for r in results):,.0f} "
              f"changes/s, get {statistics.median(r[1] for r in results):,.0f} gets/s")


if __name__ == "__main__":
    main()
