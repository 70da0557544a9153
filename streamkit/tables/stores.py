"""Table stores: the bytes under a table, per partition, with the changelog offset applied.

A store is chosen by URL::

    open_store("memory://", path, "counts")    # dicts, lost at exit
    open_store("rocksdb://", path, "counts")   # RocksDB at <path>/counts.db

Keys and values are bytes here; the table layer encodes and decodes them. Every store
keeps, per partition, the changelog offset its data reaches: :meth:`apply` writes a batch
of changes and that offset together, atomically (one RocksDB ``WriteBatch``), so after a
crash the data and the offset agree and only the changelog tail past the offset needs
replaying.

RocksDB layout: one column family per partition (``p<N>``), plus a column family
``__offsets`` holding each partition's offset. Measured against a 4-byte partition prefix
on every key (benchmarks/store_bench.py, docs/decisions/301-store-layout.md): the column
family layout avoids a bytes concatenation per key and per read, and makes
:meth:`clear` a constant-time drop of the column family rather than a range delete.

Every column family has a bloom filter (10 bits a key, in the SST files and in the
memtable): a table looks up each key it has not cached, and most lookups of a key
never written (each key of a stream of new ones) end there without reading a block.
Memtables are 8 MB rather than RocksDB's 64 MB, since each table partition has a
database of its own (docs/decisions/303-bounded-table-cache.md).

Writes use ``sync=False`` with the write-ahead log on: a process crash (SIGKILL) loses
nothing that :meth:`apply` returned from, a power loss may lose the last writes, which
the changelog (the durable copy) then restores.
"""
from __future__ import annotations

import fcntl
import os
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, cast
from urllib.parse import urlsplit

from rocksdict import BlockBasedOptions, ColumnFamily, Options, Rdict, WriteBatch, WriteOptions

from streamkit.errors import ImproperlyConfigured, StoreLocked

__all__ = ["MemoryStore", "RocksDBStore", "Store", "open_store"]

#: a partition's lookup function: raw key -> raw value or None
Reader = Callable[[bytes], "bytes | None"]


class Store(Protocol):
    """The bytes under one table: per partition, keys and values and the changelog
    offset they reach. ``MemoryStore`` and ``RocksDBStore`` are the two there are."""

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The value of ``key`` in ``partition``, or None."""
        ...

    def reader(self, partition: int) -> Reader:
        """``get`` bound to ``partition``: the table's lookup of a key it has not
        cached, without the partition lookup each time. Valid until the next
        ``apply`` or ``clear`` of the partition."""
        ...

    def items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) of ``partition``."""
        ...

    def keys(self, partition: int) -> Iterator[bytes]:
        """Every key of ``partition``."""
        ...

    def apply(self, partition: int, keys: Sequence[bytes], values: Sequence[bytes | None],
              offset: int | None) -> None:
        """Write each of ``keys`` with its value in ``values`` (None deletes the key)
        and the changelog ``offset`` they reach, atomically."""
        ...

    def offset(self, partition: int) -> int | None:
        """The changelog offset last recorded by ``apply``, or None."""
        ...

    def clear(self, partition: int) -> None:
        """Drop the data and the offset of ``partition``."""
        ...

    def size(self, partition: int) -> int:
        """Number of keys in ``partition`` (RocksDB: an estimate)."""
        ...

    def partitions(self) -> list[int]:
        """Partitions holding data, ascending."""
        ...

    def close(self) -> None:
        """Release the store (its lock, its files)."""
        ...

#: memtable size of each table partition (RocksDB's write_buffer_size)
MEMTABLE_BYTES = 8 << 20
_OFFSETS_CF = "__offsets"
_CLEARING = b"clearing:"
_OFFSET = struct.Struct(">q")


class MemoryStore:
    """A store kept in dicts, one per partition. For tests and notebooks: nothing
    survives the process."""

    def __init__(self, table_name: str = "") -> None:
        self.table_name = table_name
        self._data: dict[int, dict[bytes, bytes]] = {}
        self._offsets: dict[int, int] = {}

    def _partition(self, partition: int) -> dict[bytes, bytes]:
        data = self._data.get(partition)
        if data is None:
            data = self._data[partition] = {}
        return data

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The value of ``key`` in ``partition``, or None."""
        data = self._data.get(partition)
        return None if data is None else data.get(key)

    def reader(self, partition: int) -> Reader:
        """``get`` bound to ``partition`` (see ``Store.reader``)."""
        data = self._data.get(partition)
        return _nothing if data is None else data.get

    def items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) of ``partition`` (a snapshot: safe to apply meanwhile)."""
        return iter(list(self._data.get(partition, {}).items()))

    def keys(self, partition: int) -> Iterator[bytes]:
        """Every key of ``partition`` (a snapshot)."""
        return iter(list(self._data.get(partition, {})))

    def apply(self, partition: int, keys: Sequence[bytes], values: Sequence[bytes | None],
              offset: int | None) -> None:
        """Write ``keys`` with their ``values`` (a None value deletes the key) and
        record ``offset`` as the changelog offset they reach (None leaves the recorded
        offset as it is)."""
        data = self._partition(partition)
        for key, value in zip(keys, values, strict=True):
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        if offset is not None:
            self._offsets[partition] = offset

    def offset(self, partition: int) -> int | None:
        """The changelog offset last recorded by :meth:`apply`, or None."""
        return self._offsets.get(partition)

    def clear(self, partition: int) -> None:
        """Drop the data and the offset of ``partition`` (to rebuild it from the
        changelog)."""
        self._data.pop(partition, None)
        self._offsets.pop(partition, None)

    def size(self, partition: int) -> int:
        """Number of keys in ``partition`` (exact)."""
        return len(self._data.get(partition, ()))

    def partitions(self) -> list[int]:
        """Partitions holding data or an offset, ascending."""
        return sorted(set(self._data) | set(self._offsets))

    def close(self) -> None:
        """Nothing to release; kept for the common store shape."""

    def __repr__(self) -> str:
        return f"MemoryStore({self.table_name!r})"


class RocksDBStore:
    """A store in one RocksDB database (through rocksdict), one column family per
    partition. Only one process may open it at a time."""

    def __init__(self, path: str | os.PathLike[str], table_name: str = "") -> None:
        self.path = Path(path)
        self.table_name = table_name
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(self.path)
        try:
            self._cf_options = _cf_options()
            options = _db_options()
            exists = (self.path / "CURRENT").exists()
            names = Rdict.list_cf(str(self.path), options) if exists else ["default"]
            families = {name: self._cf_options for name in names if name != "default"}
            families.setdefault(_OFFSETS_CF, self._cf_options)
            self._db = Rdict(str(self.path), options, column_families=families)
        except BaseException:
            _unlock(self._lock_fd)
            raise
        self._write_options = WriteOptions()
        self._write_options.sync = False
        self._db.set_write_options(self._write_options)
        self._offsets_cf = self._db.get_column_family(_OFFSETS_CF)
        self._offsets_handle = self._db.get_column_family_handle(_OFFSETS_CF)
        # partition -> (Rdict view of its column family, handle for WriteBatch)
        self._families: dict[int, tuple[Rdict, ColumnFamily]] = {}
        for name in names:
            if name.startswith("p") and name[1:].isdigit():
                self._open_family(int(name[1:]), create=False)
        for partition in self._unfinished_clears():
            self.clear(partition)       # a crash interrupted it: finish it

    def _open_family(self, partition: int, *, create: bool) -> tuple[Rdict, ColumnFamily]:
        name = f"p{partition}"
        if create:
            cf = self._db.create_column_family(name, self._cf_options)
        else:
            cf = self._db.get_column_family(name)
        pair = (cf, self._db.get_column_family_handle(name))
        self._families[partition] = pair
        return pair

    def _family(self, partition: int) -> tuple[Rdict, ColumnFamily]:
        pair = self._families.get(partition)
        if pair is None:
            pair = self._open_family(partition, create=True)
        return pair

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The value of ``key`` in ``partition``, or None."""
        pair = self._families.get(partition)
        return None if pair is None else cast("bytes | None", pair[0].get(key))

    def reader(self, partition: int) -> Reader:
        """``get`` bound to ``partition`` (see ``Store.reader``): the column family's
        own ``get``, one call into RocksDB per key."""
        pair = self._families.get(partition)
        return _nothing if pair is None else cast(Reader, pair[0].get)

    def get_many(self, partition: int, keys: Sequence[bytes]) -> list[bytes | None]:
        """Values of ``keys`` in ``partition`` (None where missing), in one call."""
        pair = self._families.get(partition)
        if pair is None:
            return [None] * len(keys)
        return cast("list[bytes | None]", pair[0].get(list(keys)))

    def items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) of ``partition`` in key order."""
        pair = self._families.get(partition)
        return iter(()) if pair is None else cast("Iterator[tuple[bytes, bytes]]",
                                                  pair[0].items())

    def keys(self, partition: int) -> Iterator[bytes]:
        """Every key of ``partition`` in key order."""
        pair = self._families.get(partition)
        return iter(()) if pair is None else cast("Iterator[bytes]", pair[0].keys())

    def apply(self, partition: int, keys: Sequence[bytes], values: Sequence[bytes | None],
              offset: int | None) -> None:
        """Write ``keys`` with their ``values`` (a None value deletes the key) and
        ``offset`` in one atomic WriteBatch: after a crash either all of it is there or
        none of it is."""
        handle = self._family(partition)[1]
        batch = WriteBatch(raw_mode=True)
        batch.set_default_column_family(handle)
        put, delete = batch.put, batch.delete
        for key, value in zip(keys, values, strict=True):
            if value is None:
                delete(key)
            else:
                put(key, value)
        if offset is not None:
            batch.put(_partition_key(partition), _OFFSET.pack(offset), self._offsets_handle)
        self._db.write(batch, self._write_options)

    def offset(self, partition: int) -> int | None:
        """The changelog offset last recorded by :meth:`apply`, or None. Survives close,
        reopen and SIGKILL."""
        raw = cast("bytes | None", self._offsets_cf.get(_partition_key(partition)))
        return None if raw is None else int(_OFFSET.unpack(raw)[0])

    def clear(self, partition: int) -> None:
        """Drop the data and the offset of ``partition`` (to rebuild it from the
        changelog): its column family is dropped and recreated empty.

        Crash-safe: the offset is removed together with a "clearing" mark in one batch,
        and the mark goes only after the drop; a store opened with the mark still there
        finishes the clear. So a crash never leaves old data that a rebuild from a
        compacted changelog (tombstones gone) could not overwrite.

        A partition with no column family, no offset and no unfinished clear holds
        nothing (a new store, at every first start): it is left as it is, its column
        family created by the first write, sparing the writes and syncs of a drop.
        """
        key = _partition_key(partition)
        if (partition not in self._families and self._offsets_cf.get(key) is None
                and self._offsets_cf.get(_CLEARING + key) is None):
            return
        batch = WriteBatch(raw_mode=True)
        batch.delete(key, self._offsets_handle)
        batch.put(_CLEARING + key, b"", self._offsets_handle)
        self._db.write(batch, self._write_options)
        pair = self._families.pop(partition, None)
        if pair is not None:
            pair[0].close()
            self._db.drop_column_family(f"p{partition}")
        self._open_family(partition, create=True)
        self._offsets_cf.delete(_CLEARING + key)

    def _unfinished_clears(self) -> list[int]:
        keys = cast("Iterator[bytes]", self._offsets_cf.keys(from_key=_CLEARING))
        return [int(key[len(_CLEARING):]) for key in keys if key.startswith(_CLEARING)]

    def size(self, partition: int) -> int:
        """Approximate number of keys in ``partition`` (RocksDB's estimate-num-keys:
        deletes and overwrites not yet compacted make it drift)."""
        pair = self._families.get(partition)
        if pair is None:
            return 0
        return pair[0].property_int_value("rocksdb.estimate-num-keys") or 0

    def partitions(self) -> list[int]:
        """Partitions holding a column family, ascending."""
        return sorted(self._families)

    def flush(self) -> None:
        """Flush memtables to SST files (not needed for durability: the WAL has it)."""
        for cf, _ in self._families.values():
            cf.flush()
        self._offsets_cf.flush()

    def close(self) -> None:
        """Close the database and release the lock. Idempotent."""
        if self._closed:
            return
        self._closed = True
        # Every column family view keeps RocksDB open: release them all first.
        for cf, _ in self._families.values():
            cf.close()
        self._families.clear()
        self._offsets_cf.close()
        self._db.close()
        # RocksDB lets go of its files only once no Python object refers to it
        del self._offsets_cf, self._offsets_handle, self._db
        _unlock(self._lock_fd)

    def __repr__(self) -> str:
        return f"RocksDBStore({str(self.path)!r})"


def _partition_key(partition: int) -> bytes:
    return b"%d" % partition


def _db_options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    options.set_max_background_jobs(2)
    return options


def _cf_options() -> Options:
    options = Options(raw_mode=True)
    # a lookup of a key the partition never had (the table's miss on a new key) stops
    # at the filters: one in the memtable, one per SST file (10 bits a key, ~1% false
    # positives). SST files written before these options have no filter and are
    # searched as before.
    table = BlockBasedOptions()
    table.set_bloom_filter(10, False)
    options.set_block_based_table_factory(table)
    options.set_memtable_prefix_bloom_ratio(0.05)
    options.set_memtable_whole_key_filtering(True)
    # RocksDB's 64 MB memtable is per column family, and every table partition has its
    # own database: 8 MB (up to two while one is written out) keeps a worker with many
    # table partitions small; the bloom filters keep lookups cheap over more SST files
    options.set_write_buffer_size(MEMTABLE_BYTES)
    return options


def _nothing(key: bytes) -> None:
    return None


def _lock(path: Path) -> int:
    """Take an exclusive lock next to the store, naming our pid; the OS frees it when
    the process dies, SIGKILL included."""
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        who = ("this process already has it open" if holder == str(os.getpid())
               else f"another worker holds it (pid {holder})")
        raise StoreLocked(
            f"table store {str(path)!r} is locked: {who}. Only one process may open a "
            f"RocksDB store; stop that worker or give this one another datadir.",
            str(path)) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def open_store(url: str, path: str | os.PathLike[str] | None, table_name: str,
               partitions: int | None = None) -> MemoryStore | RocksDBStore:
    """Open the store of table ``table_name``.

    ``memory://``: dicts. ``rocksdb://``: RocksDB at ``<path>/<table_name>.db`` where
    ``path`` is the app's table directory (``<datadir>/<app id>/tables``);
    ``rocksdb:///abs/dir`` puts it under ``/abs/dir`` instead. ``partitions`` is a hint
    only: partitions are created on first use.
    """
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryStore(table_name)
    if scheme == "rocksdb":
        location = url[len("rocksdb://"):]
        directory = Path(location) if location else (Path(path) if path is not None else None)
        if directory is None:
            raise ImproperlyConfigured(
                f"table {table_name!r}: store {url!r} needs a directory (the app's datadir)")
        return RocksDBStore(directory / f"{table_name}.db", table_name)
    raise ImproperlyConfigured(
        f"table {table_name!r}: unknown store URL {url!r}; use 'memory://' or 'rocksdb://'")


def open_store_waiting(url: str, path: str | os.PathLike[str] | None, table_name: str,
                       timeout: float = 15.0) -> MemoryStore | RocksDBStore:
    """``open_store``, waiting while the worker that owned the partition before a
    rebalance still holds its lock. The wait blocks the worker's event loop (it runs
    inside the partition assignment) and is bounded by ``timeout`` seconds: the
    previous owner lets go as soon as its own revoke callback returns, or at once if it
    died (docs/decisions/009-bounded-blocking-waits.md)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return open_store(url, path, table_name)
        except StoreLocked:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)
