"""A new RocksDB store at a worker's first start: restoring an empty partition clears
nothing, so it creates nothing on disk until the first write (no column family, no
syncs), and a clear a crash interrupted after the drop is still finished on open."""
from __future__ import annotations

from pathlib import Path

from streamkit.tables.stores import open_store


def test_clearing_a_partition_that_holds_nothing_creates_nothing(tmp_path: Path) -> None:
    store = open_store("rocksdb://", tmp_path, "counts")
    try:
        store.clear(0)                     # what a restore does on a new store
        assert store.partitions() == [] and store.offset(0) is None
        store.apply(0, [b"a"], [b"1"], 1)  # the first write makes the partition
        assert store.partitions() == [0] and store.get(0, b"a") == b"1"
    finally:
        store.close()
    again = open_store("rocksdb://", tmp_path, "counts")
    try:
        assert again.partitions() == [0] and again.offset(0) == 1
        again.clear(3)
        assert again.partitions() == [0]
    finally:
        again.close()


def test_a_clear_interrupted_after_the_drop_is_finished_on_open(tmp_path: Path) -> None:
    store = open_store("rocksdb://", tmp_path, "counts")
    store.apply(0, [b"stale"], [b"1"], 10)
    # clear() wrote its mark and dropped the column family; then the process died
    store._offsets_cf.delete(b"0")
    store._offsets_cf.put(b"clearing:0", b"")
    family, handle = store._families.pop(0)
    family.close()
    store._db.drop_column_family("p0")
    del family, handle                     # RocksDB closes once nothing refers to it
    store.close()
    again = open_store("rocksdb://", tmp_path, "counts")
    try:
        assert again._unfinished_clears() == []
        assert list(again.items(0)) == [] and again.offset(0) is None
    finally:
        again.close()
