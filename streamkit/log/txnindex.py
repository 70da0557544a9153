"""The transaction index of one partition: which transactions are open on it, which
ended in an abort, and the newest epoch of each producer that wrote here.

It answers what a ``read_committed`` reader needs and the segments cannot tell
cheaply: the last stable offset (the first offset of the oldest open transaction, or
the end offset) and whether a transactional batch belongs to an aborted transaction;
and it fences a producer whose epoch is older than one seen here. Kafka keeps the same
facts in its producer-state snapshots and ``.txnindex`` files.

The file ``transactions`` of the partition holds fixed-size entries, appended under
the partition's lock (little-endian)::

    kind      1   1 begin, 2 commit, 3 abort
    producer  8   producer id
    epoch     2   producer epoch
    offset    8   begin: the transaction's first offset in this partition;
                  commit/abort: the offset of its marker (the control batch)
    first     8   the transaction's first offset in this partition
    time      8   wall clock (ms) when written
    crc32     4   of the 35 bytes before it

A begin entry is written before the transaction's first batch, so the index never
misses an open transaction; a marker is appended before its end entry, and a
coordinator that died between the two writes the marker again when it completes the
transaction (the second marker is skipped by readers like the first). Bytes after the
last whole entry are a write that never completed and are cut by the next writer; a
whole entry that fails its CRC is corruption, reported and never cut.
"""
from __future__ import annotations

import struct
import time
import zlib

from streamkit.errors import CorruptRecord, ProducerFenced
from streamkit.log.segment import Handle
from streamkit.log.storage import PartitionStore

ENTRY = struct.Struct("<Bqhqqq")
ENTRY_SIZE = ENTRY.size + 4
BEGIN, COMMIT, ABORT = 1, 2, 3

#: producer id, epoch
Producer = tuple[int, int]
#: the last stable offset of a partition with no open transaction: past any offset
NONE_OPEN = 1 << 62


def encode_entry(kind: int, producer: Producer, offset: int, first: int,
                 at_ms: int | None = None) -> bytes:
    """One entry of the index, with its CRC."""
    stamp = time.time_ns() // 1_000_000 if at_ms is None else at_ms
    body = ENTRY.pack(kind, producer[0], producer[1], offset, first, stamp)
    return body + struct.pack("<I", zlib.crc32(body))


class CommittedView:
    """What a read_committed reader may see of a partition right now (the
    ``Committed`` protocol of ``streamkit.log.segment``)."""

    __slots__ = ("stable", "_aborted")

    def __init__(self, stable: int, aborted: dict[int, list[tuple[int, int]]]) -> None:
        self.stable = stable
        self._aborted = aborted

    def aborted(self, producer_id: int, offset: int) -> bool:
        """True if ``offset`` of ``producer_id`` is inside one of its aborted
        transactions (between its first offset and its abort marker)."""
        ranges = self._aborted.get(producer_id)
        if not ranges:
            return False
        return any(first <= offset < marker for first, marker in ranges)


class TransactionIndex:
    """The index of one partition, as far as this process has read it."""

    def __init__(self, store: PartitionStore, topic: str, partition: int) -> None:
        self._store = store
        self.topic = topic
        self.partition = partition
        self._handle: Handle | None = None
        self._read_to = 0
        #: producer id -> (epoch, first offset, ms written) of its open transaction
        self.open: dict[int, tuple[int, int, int]] = {}
        #: producer id -> (first offset, marker offset) of its aborted transactions
        self.aborted: dict[int, list[tuple[int, int]]] = {}
        #: producer id -> newest epoch seen here
        self.epochs: dict[int, int] = {}

    def _forget(self) -> None:
        self._read_to = 0
        self.open, self.aborted, self.epochs = {}, {}, {}

    def refresh(self, create: bool = False) -> None:
        """Read what other processes appended (or the whole file again if it was
        replaced)."""
        handle = self._handle
        size = -1 if handle is None else handle.linked_size()
        if handle is not None and size < 0:
            handle.close()                  # replaced by a cleanup: read the new file
            handle = self._handle = None
        if handle is None:
            # (most partitions never see a transaction: asking costs no exception)
            if not create and not self._store.has_transactions():
                return
            handle = self._handle = self._store.open_transactions(create)
            self._forget()
            if handle is None:
                return
            size = handle.size()
        whole = size - size % ENTRY_SIZE
        if whole < self._read_to:           # cut or replaced in place: start again
            self._forget()
        if whole > self._read_to:
            data = handle.pread(whole - self._read_to, self._read_to)
            self._apply(data, self._read_to)
            self._read_to = whole

    def _apply(self, data: bytes, at: int) -> None:
        for pos in range(0, len(data), ENTRY_SIZE):
            body = data[pos:pos + ENTRY.size]
            (crc,) = struct.unpack_from("<I", data, pos + ENTRY.size)
            if zlib.crc32(body) != crc:
                raise CorruptRecord(
                    f"corrupt transaction index: {self.topic}[{self.partition}] entry "
                    f"{(at + pos) // ENTRY_SIZE} (byte {at + pos} of the file "
                    f"'transactions'): CRC mismatch; read_committed reads and "
                    f"transactions on this partition are refused until it is repaired",
                    self.topic, self.partition, -1)
            kind, pid, epoch, offset, first, stamp = ENTRY.unpack(body)
            if epoch > self.epochs.get(pid, -1):
                self.epochs[pid] = epoch
            if kind == BEGIN:
                self.open[pid] = (epoch, first, stamp)
            else:
                self.open.pop(pid, None)
                if kind == ABORT:
                    self.aborted.setdefault(pid, []).append((first, offset))

    def view(self) -> CommittedView:
        """What a read_committed reader may read now (call ``refresh`` first); its
        ``stable`` is ``NONE_OPEN`` when no transaction is open (the end offset)."""
        stable = min((first for _e, first, _t in self.open.values()), default=NONE_OPEN)
        return CommittedView(stable, self.aborted)

    def check_epoch(self, producer: Producer) -> None:
        """Raise ``ProducerFenced`` if a newer epoch of the producer wrote here."""
        newest = self.epochs.get(producer[0], -1)
        if producer[1] < newest:
            raise ProducerFenced(
                f"producer {producer[0]} epoch {producer[1]} is fenced on "
                f"{self.topic}[{self.partition}]: epoch {newest} of the same "
                f"transactional id took over")

    def _append_locked(self, entry: bytes) -> None:
        self.refresh(create=True)
        handle = self._handle
        assert handle is not None
        size = handle.size()
        if size != self._read_to:           # a torn entry of a writer that died
            handle.truncate(self._read_to)
        handle.append(entry)
        self._apply(entry, self._read_to)
        self._read_to += ENTRY_SIZE

    def begin_locked(self, producer: Producer, first: int) -> None:
        """Under the partition's lock, before a transactional batch at ``first``:
        record that the producer's transaction is open here (once per transaction)."""
        self.refresh()
        self.check_epoch(producer)
        current = self.open.get(producer[0])
        if current is not None and current[0] == producer[1]:
            return
        if current is not None:
            # a transaction of an older epoch that no marker ended (the coordinator
            # ends every one it knows of before a new epoch writes): it is aborted,
            # never taken as committed
            self._append_locked(encode_entry(ABORT, producer, first, current[1]))
        self._append_locked(encode_entry(BEGIN, producer, first, first))

    def is_open_locked(self, producer: Producer) -> bool:
        """Under the partition's lock: True if the producer has a transaction open
        here, which a marker of ``producer`` (its epoch or newer) may end. If it has
        none, a newer epoch is still written down: the transaction may have been told
        of this partition and not written to it yet, and a write it makes now (a
        zombie's, after the coordinator aborted it) must be fenced, not begin a
        transaction that no marker would end."""
        self.refresh()
        self.check_epoch(producer)
        if producer[0] in self.open:
            return True
        if producer[1] > self.epochs.get(producer[0], -1):
            # a commit entry that ends nothing: it only carries the epoch
            self._append_locked(encode_entry(COMMIT, producer, -1, -1))
        return False

    def end_locked(self, producer: Producer, marker: int, commit: bool) -> None:
        """Under the partition's lock, after the marker at ``marker`` was appended."""
        current = self.open.get(producer[0])
        if current is None:
            return
        self._append_locked(encode_entry(COMMIT if commit else ABORT, producer, marker,
                                         current[1]))

    def sync(self) -> None:
        """Make the entries written so far durable."""
        if self._handle is not None:
            self._handle.fsync()

    def trim_locked(self, start_offset: int) -> None:
        """Under the partition's lock, after retention moved the log's start to
        ``start_offset``: rewrite the index without the aborted transactions that
        ended before it, keeping each producer's newest epoch (for fencing)."""
        self.refresh()
        if self._handle is None or not any(
                marker < start_offset for ranges in self.aborted.values()
                for _first, marker in ranges):
            return
        entries = []
        for pid, epoch in self.epochs.items():
            # a commit entry that ends nothing: it only carries the epoch
            entries.append(encode_entry(COMMIT, (pid, epoch), -1, -1))
        for pid, ranges in self.aborted.items():
            for first, marker in ranges:
                if marker >= start_offset:
                    entries.append(encode_entry(ABORT, (pid, self.epochs[pid]), marker,
                                                first))
        for pid, (epoch, first, stamp) in self.open.items():
            entries.append(encode_entry(BEGIN, (pid, epoch), first, first, stamp))
        self._store.replace_transactions(b"".join(entries))
        self._handle.close()
        self._handle = None
        self.refresh()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
