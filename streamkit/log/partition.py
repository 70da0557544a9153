"""One partition of the embedded log: appends, reads, offsets, rolls, retention and
compaction, over a partition store (files or memory).

Every change to a partition happens under the store's lock (an flock across
processes), after re-reading whatever other processes appended, so offsets stay dense
however many processes write. Reads take no lock: batches are only ever appended, a
reader indexes a batch once a writer has published the recovery point past it, and
compaction and retention replace or delete whole segment files, which a reader notices
and re-resolves.

Nothing acknowledged is removed: bytes before the recovery point (``storage``) must be
whole batches, and a batch there that is not is corruption, reported with its offset;
reads hand out the records before it, appends are refused while the chain of batch
headers is broken, and only ``streamkit log repair`` moves damage aside. Only bytes
after the recovery point can be an interrupted write, and only those are cut.
"""
from __future__ import annotations

import errno
import logging
import sys
import time
from bisect import bisect_right
from collections.abc import Sequence

from streamkit.errors import CorruptRecord, UnknownTopic
from streamkit.log.cleanup import apply_retention, compact_segments
from streamkit.log.config import TopicConfig
from streamkit.log.segment import (CONTROL_ABORT, CONTROL_COMMIT, BatchRow, Committed,
                                   Handle, Segment, encode_batch, segment_name)
from streamkit.log.storage import PartitionStore, RecoveryPoint, boot_id
from streamkit.log.txnindex import CommittedView, Producer, TransactionIndex
from streamkit.types import Headers, Message, OutgoingRecord

log = logging.getLogger("streamkit.log")

#: Records per batch written: a reader decodes whole batches, so keep them modest.
MAX_BATCH_RECORDS = 500
#: How often a writing process checks time-based retention on its own.
RETENTION_CHECK_SECONDS = 30.0
#: How often an idle reader lists the directory even if its mtime did not change
#: (directory mtimes have a coarse clock on some file systems).
RELIST_SECONDS = 1.0

#: What ``Partition.append`` returns for ``Partition.fsync``: the segment's base, the
#: byte the append ended at, and the segment's handle.
FsyncMark = tuple[int, int, Handle]

#: why bytes after the confirmed end of the active segment may be cut
TORN_WRITE = ("a write that never completed (its producer stopped mid-write; it was "
              "never acknowledged)")
UNSYNCED_AT_RESTART = ("bytes that were not fsynced when the machine restarted (written "
                       "with acks=0 or 1)")
UNSYNCED_WITHOUT_POINT = "bytes after the last fsync, in a log without a recovery point"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def confirmed_end(store: PartitionStore, base: int, size: int, point: RecoveryPoint | None
                  ) -> tuple[int, bool]:
    """How far the batches of the active segment ``base`` (``size`` bytes) must be
    whole, and whether that comes from a recovery point of this boot of the machine.
    After a restart (or with no point: an older streamkit wrote the log) only what was
    fsynced is sure to be whole; it may then end inside a batch."""
    if point is not None and point.boot == boot_id():
        return (point.end if point.base == base else 0), True
    synced_base, synced_end = store.read_synced()
    confirmed = size if synced_base > base else synced_end if synced_base == base else 0
    if point is not None and point.base == base:
        confirmed = min(confirmed, point.end)
    return confirmed, False


def _columns(rows: Sequence[OutgoingRecord], now: int, log_append_time: bool
             ) -> tuple[list[int], Sequence[bytes | None], Sequence[bytes | None],
                        Sequence[Headers | None]]:
    """The timestamps, keys, values and headers (None for none) of ``rows``, taken
    apart column by column in C: per record, only what differs from the common case
    (every record stamped now, none with headers) costs a Python step."""
    n = len(rows)
    if not n:
        return [], (), (), ()
    keys, values, headers, times = tuple(zip(*rows, strict=True))[:4]
    if log_append_time or times.count(None) == n:
        stamps = [now] * n
    else:
        stamps = [now if t is None else t for t in times]
    if any(headers):
        headers = tuple(h or None for h in headers)
    else:
        headers = (None,) * n
    return stamps, keys, values, headers


class Partition:
    """One topic partition on one process. Not thread-safe: one per broker."""

    def __init__(self, topic: str, partition: int, store: PartitionStore,
                 config: TopicConfig) -> None:
        self.topic = topic
        self.partition = partition
        self.store = store
        self.config = config
        self.segments: list[Segment] = []
        self._bases: list[int] = []
        self._version: object = None
        self._relisted_at = 0.0
        self._retention_checked_at = time.monotonic()
        self._started: tuple[int, int] = (-1, 0)       # (segment base, rolled in at ms)
        #: the fsync mark of this process's last append (``sync``)
        self._last_mark: FsyncMark | None = None
        #: open and aborted transactions, for read_committed readers and fencing
        self.transactions = TransactionIndex(store, topic, partition)

    # -- segment list ----------------------------------------------------------------
    def gone(self) -> UnknownTopic:
        """The error for a partition whose topic was deleted."""
        return UnknownTopic(f"topic {self.topic!r} partition {self.partition} no longer "
                            "exists (deleted)")

    def refresh(self, force: bool = False) -> bool:
        """Re-read the list of segments if another process (or cleanup) changed it.
        Returns True if a segment was added, replaced or removed."""
        try:
            version = self.store.version()
        except FileNotFoundError:
            self.close()
            raise self.gone() from None
        if version == self._version and not force:
            return False
        self._version = version
        self._relisted_at = time.monotonic()
        try:
            bases = self.store.segment_bases()
        except FileNotFoundError:
            self.close()
            raise self.gone() from None
        old = {seg.base: seg for seg in self.segments}
        segments = []
        for base in bases:
            seg = old.pop(base, None)
            if seg is not None and self.store.identity(base) == seg.handle.identity:
                segments.append(seg)
                continue
            if seg is not None:
                seg.close()
            handle = self.store.open(base)
            if handle is None:
                continue
            segments.append(Segment(base, handle, self.topic, self.partition))
        for seg in old.values():
            seg.close()
        if len(segments) == len(self.segments) and \
                all(a is b for a, b in zip(segments, self.segments, strict=True)):
            return False
        self.segments = segments
        self._bases = [seg.base for seg in segments]
        return True

    def recover_locked(self) -> None:
        """Under the store's lock: what every append does first. Learn what other
        processes appended, cut a write that never completed after the recovery
        point, and publish the point (``streamkit log repair`` ends with it)."""
        self._sync_tail_locked()

    def _sync_tail_locked(self) -> Segment:
        """Under the lock: learn what other processes appended and return the active
        (last) segment, indexed to its end, with the recovery point at that end."""
        self.refresh()
        if not self.segments:
            raise CorruptRecord(
                f"corrupt log: {self.topic}[{self.partition}] has no segment file left "
                f"(recovery point: {self.store.read_recovery()}); appends are refused",
                self.topic, self.partition, 0)
        seg = self.segments[-1]
        point = self.store.read_recovery()
        if point is not None and point.base > seg.base or \
                self.store.identity(seg.base) != seg.handle.identity:
            # another process rolled, or replaced the file (repair): a directory's
            # mtime can miss either, and an append must never go to an old file
            self.refresh(force=True)
            if not self.segments:
                return self._sync_tail_locked()   # (says there is no segment left)
            seg = self.segments[-1]
            if point is not None and point.base > seg.base:
                raise seg.corrupt(len(seg.positions), (
                    f"the recovery point is in segment {segment_name(point.base)}, which "
                    "is missing; appends are refused"))
        size = seg.handle.size()
        if point is not None and point.base == seg.base and point.boot == boot_id() \
                and point.end == size == seg.end and point.next_offset == seg.next_offset:
            return seg                            # nothing changed since the last append
        return self._recover_locked(seg, point, size)

    def _append_tail_locked(self) -> Segment:
        """Under the lock: the active segment to append to. When the recovery point is
        still the one this process published after its own last append, and the file
        it holds open still has its name and ends there, nothing else happened: no
        other process appended (the point would be past it), rolled (the point would
        name a later segment), cut, repaired or compacted (the file would be replaced,
        so unlinked), or deleted the partition (unlinked too). That costs one
        ``pread`` and one ``fstat``; anything else takes the full check."""
        if self.segments:
            seg = self.segments[-1]
            point = self.store.read_recovery()
            if point is not None and point.base == seg.base and \
                    point.end == seg.end == seg.handle.linked_size() and \
                    point.next_offset == seg.next_offset and point.boot == boot_id():
                return seg
        return self._sync_tail_locked()

    def _recover_locked(self, seg: Segment, point: RecoveryPoint | None,
                        size: int) -> Segment:
        """Check the active segment against the recovery point, cut an interrupted
        write after it, and publish the point again (the slow path of an append)."""
        confirmed, same_boot = confirmed_end(self.store, seg.base, size, point)
        cause = TORN_WRITE if same_boot else \
            UNSYNCED_AT_RESTART if point is not None else UNSYNCED_WITHOUT_POINT
        if seg.end > confirmed:
            seg.reset_index()
        problem = seg.scan(min(confirmed, size), whole=same_boot)
        if problem is None and size < confirmed:
            problem = (f"the segment ends at byte {size}, before byte {confirmed} where "
                       "completed writes end: acknowledged records are missing")
        if problem is None and same_boot and point is not None and \
                point.base == seg.base and point.next_offset != seg.next_offset:
            problem = (f"the batch headers end at offset {seg.next_offset - 1}, the "
                       f"recovery point at {point.next_offset - 1}")
        if problem is not None:
            raise seg.corrupt(len(seg.positions), problem + "; appends are refused")
        problem = seg.adopt(size, seg.next_offset)
        if problem is not None and point is None and seg.whole_batch_after(size):
            # no recovery point (an older streamkit wrote this log): only a suffix
            # that nothing whole follows can be a torn write
            raise seg.corrupt(len(seg.positions), problem + ", and whole batches "
                              "follow; appends are refused")
        if problem is not None:
            log.warning("%s[%d]: cut %d bytes after offset %d in segment %s: %s (%s)",
                        self.topic, self.partition, size - seg.end, seg.next_offset - 1,
                        segment_name(seg.base), cause, problem)
            seg.handle.truncate(seg.end)
        if not same_boot and point is not None and point.base == seg.base and \
                point.next_offset > seg.next_offset:
            self._skip_offsets_locked(seg, point.next_offset)
        self._publish_locked(seg)
        return seg

    def _skip_offsets_locked(self, seg: Segment, next_offset: int) -> None:
        """Records up to ``next_offset`` were lost in a restart of the machine: write
        an empty batch that keeps their offsets, so none is ever handed out twice."""
        log.warning("%s[%d]: offsets %d-%d were lost in a restart of the machine before "
                    "they were fsynced (acks=0 or 1); they are skipped, not reused",
                    self.topic, self.partition, seg.next_offset, next_offset - 1)
        data = encode_batch(seg.next_offset, next_offset - 1, [], -1, False)
        pos = seg.end
        seg.handle.append(data)
        seg.add(pos, seg.next_offset, next_offset - 1, 0, -1, pos + len(data))

    def _publish_locked(self, seg: Segment) -> None:
        """Record that every byte of ``seg`` up to its indexed end is whole."""
        self.store.write_recovery(RecoveryPoint(seg.base, seg.end, seg.next_offset,
                                                boot_id()))

    def _rolled_elsewhere(self, seg: Segment) -> bool:
        """True (and the segment list re-read) if another process rolled past ``seg``:
        then a segment named after ``seg``'s end offset exists. Checked by name because
        a directory's mtime may miss it (its clock can be coarse)."""
        return seg is self.segments[-1] and bool(seg.lasts) and \
            self.store.exists(seg.lasts[-1] + 1) and self.refresh(force=True)

    def _segment_started(self, seg: Segment) -> int:
        """When the active segment was rolled in (ms), for ``segment.ms``. Kept in the
        partition's ``rolled`` file; a partition that never rolled starts its clock at
        its first append."""
        if self._started[0] != seg.base:
            started = self.store.read_rolled()
            if started is None or started[0] != seg.base:
                started = (seg.base, _now_ms())
                self.store.write_rolled(started)
            self._started = started
        return self._started[1]

    def _roll_locked(self, seg: Segment) -> Segment:
        """Close the active segment (fsynced: a closed segment is whole even after a
        restart of the machine) and start a new one at the next offset."""
        seg.handle.fsync()
        base = seg.next_offset
        self._started = (base, _now_ms())
        self.store.write_rolled(self._started)
        seg = Segment(base, self.store.create(base), self.topic, self.partition)
        self.segments.append(seg)
        self._bases.append(base)
        self._version = None
        self._publish_locked(seg)
        return seg

    # -- append --------------------------------------------------------------------
    def append(self, rows: Sequence[OutgoingRecord], producer: Producer | None = None
               ) -> tuple[int, list[int], FsyncMark]:
        """Append records (their key, value, headers and timestamp); return (first
        offset, timestamps, fsync mark). With ``producer`` (id, epoch) the records
        join that producer's open transaction (begun here if it is not yet); raises
        ``ProducerFenced`` if a newer epoch of it wrote here."""
        now = _now_ms()
        stamps, keys, values, headers = _columns(rows, now, self.config.log_append_time)
        return self._append_columns(now, stamps, keys, values, headers, producer)

    def write_marker(self, producer: Producer, commit: bool) -> int | None:
        """End the producer's transaction in this partition with a commit or abort
        marker; returns the marker's offset, or None if no transaction of the
        producer is open here (it never wrote here, or a marker already ended it)."""
        now = _now_ms()
        key = CONTROL_COMMIT if commit else CONTROL_ABORT
        offset, stamps, _mark = self._append_columns(
            now, [now], [key], [b""], [None], producer, control=True)
        return offset if stamps else None

    def append_columns(self, keys: Sequence[bytes | None], values: Sequence[bytes | None],
                       timestamps: Sequence[int] | None = None,
                       headers: Sequence[Headers | None] | None = None
                       ) -> tuple[int, list[int], FsyncMark]:
        """Append records given as columns, as ``append``: keys and values, their
        timestamps (None: stamped now, as all are on a LogAppendTime topic) and
        headers (None: none)."""
        now = _now_ms()
        count = len(keys)
        if timestamps is None or self.config.log_append_time:
            stamps = [now] * count
        else:
            stamps = list(timestamps)
        return self._append_columns(now, stamps, keys, values,
                                    (None,) * count if headers is None else headers)

    def _append_columns(self, now: int, stamps: list[int], keys: Sequence[bytes | None],
                        values: Sequence[bytes | None], headers: Sequence[Headers | None],
                        producer: Producer | None = None, control: bool = False
                        ) -> tuple[int, list[int], FsyncMark]:
        lat = self.config.log_append_time
        with self.store.lock():
            seg = self._append_tail_locked()
            rolled = False
            if seg.positions and (seg.end >= self.config.segment_bytes or
                                  now - self._segment_started(seg) >= self.config.segment_ms):
                seg = self._roll_locked(seg)
                rolled = True
            first = seg.next_offset
            if producer is not None and not self._transaction_locked(producer, first,
                                                                     control):
                return first, [], (seg.base, seg.end, seg.handle)
            batches = []
            pos = seg.end
            for start in range(0, len(keys), MAX_BATCH_RECORDS):
                stop = min(start + MAX_BATCH_RECORDS, len(keys))
                ts = stamps[start:stop]
                body: list[BatchRow] = list(zip(
                    range(stop - start), ts, keys[start:stop], values[start:stop],
                    headers[start:stop], strict=True))
                base = first + start
                maxts = max(ts)
                data = encode_batch(base, first + stop - 1, body, maxts, lat, producer,
                                    control)
                batches.append((pos, base, stop - start, maxts, data))
                pos += len(data)
            try:
                seg.handle.append(b"".join(b[4] for b in batches))
            except BaseException as exc:
                self._undo_write_locked(seg, exc)
                raise
            for at, base, count, maxts, data in batches:
                seg.add(at, base, base + count - 1, count, maxts, at + len(data))
            self._publish_locked(seg)
            if control:
                assert producer is not None
                self.transactions.end_locked(producer, first, keys[0] == CONTROL_COMMIT)
            end = seg.end
            if rolled or time.monotonic() - self._retention_checked_at > \
                    RETENTION_CHECK_SECONDS:
                try:
                    self.refresh()  # (the fast path above does not re-list segments)
                    self._cleanup_locked(compact=rolled, force=False)
                except Exception as exc:  # noqa: BLE001 - the records are in the log:
                    # a failed cleanup (a full disk while compacting) must not fail
                    # the append that triggered it; the next check tries again
                    log.error("cleanup of %s[%d] failed: %s", self.topic, self.partition,
                              exc)
        self._last_mark = (seg.base, end, seg.handle)
        return first, stamps, self._last_mark

    def _transaction_locked(self, producer: Producer, first: int, control: bool) -> bool:
        """Under the lock, before a transactional append at ``first``: the index
        learns that the transaction is open here (before its first batch, so that it
        never misses one); a marker goes ahead only if the transaction is open."""
        if control:
            return self.transactions.is_open_locked(producer)
        self.transactions.begin_locked(producer, first)
        return True

    def _undo_write_locked(self, seg: Segment, error: BaseException) -> None:
        """A write failed part way (a full disk, a signal): cut what it left, so the
        next append starts on a batch boundary. Nothing of it was acknowledged."""
        try:
            left = seg.handle.size() - seg.end
            if left:
                seg.handle.truncate(seg.end)
                log.warning("%s[%d]: a write of records from offset %d failed (%s); cut "
                            "the %d bytes it left in segment %s (nothing of it was "
                            "acknowledged)", self.topic, self.partition, seg.next_offset,
                            error, left, segment_name(seg.base))
        except OSError as exc:       # the next append finds them after the point
            log.error("%s[%d]: could not cut a failed write: %s", self.topic,
                      self.partition, exc)

    def fsync(self, mark: FsyncMark) -> None:
        """Make everything up to ``mark`` durable, sharing fsyncs between processes:
        whoever holds the sync lock fsyncs all bytes written so far and records it."""
        base, end, handle = mark
        with self.store.sync_lock() as synced:
            if synced[0] == base and synced[1] >= end:
                return
            # (a mark in a later segment says nothing about this one: a roll does not
            # fsync, so fsync this segment; that is cheap if someone already did)
            if getattr(handle, "fd", 0) < 0:
                reopened = self.store.open(base)
                if reopened is None:
                    return                       # deleted by retention meanwhile
                handle = reopened
            # record how far the *completed* writes reach, read before the fsync: bytes
            # past the recovery point may be a write in progress that is cut later
            point = self.store.read_recovery()
            size = handle.size()
            whole = point.end if point is not None and point.base == base else size
            handle.fsync()
            if (base, whole) > synced:
                self.store.set_synced((base, whole))

    def sync(self) -> None:
        """Make every record this process appended so far durable: ``fsync`` up to its
        last append (several appends answered with one fsync)."""
        if self._last_mark is not None:
            self.fsync(self._last_mark)
        self.transactions.sync()

    # -- read ----------------------------------------------------------------------
    def committed_view(self) -> CommittedView:
        """What a read_committed reader may read now: the last stable offset (past
        the end, ``NONE_OPEN``, when no transaction is open) and the aborted
        transactions."""
        self.transactions.refresh()
        return self.transactions.view()

    def read(self, offset: int, max_records: int, committed: Committed | None = None
             ) -> list[Message]:
        """Up to ``max_records`` messages at offsets >= ``offset`` (none if caught up),
        in offset order, each offset once; never a transaction's marker. With
        ``committed`` (``committed_view``), only what a read_committed reader sees.
        At damage, the records before it are returned; a read that starts at it
        raises ``CorruptRecord``."""
        self.refresh()
        out: list[Message] = []
        i = max(bisect_right(self._bases, offset) - 1, 0)
        try:
            while i < len(self.segments):
                seg = self.segments[i]
                damage = None
                try:
                    if i < len(self.segments) - 1:
                        self._index_closed(i)
                    elif (not seg.lasts or offset > seg.lasts[-1]) and \
                            self._index_active(seg, caught_up=not out):
                        # the segment list changed under us: find ``offset`` again
                        i = max(bisect_right(self._bases, offset) - 1, 0)
                        continue
                except CorruptRecord as exc:
                    damage = exc        # the batches indexed before it are still read
                offset = seg.read(offset, max_records - len(out), out, committed)
                if len(out) >= max_records or \
                        committed is not None and offset >= committed.stable:
                    break
                if damage is not None:
                    raise damage
                i += 1
        except CorruptRecord:
            if out:
                return out          # the next read, from the damage, raises
            raise
        return out

    def _index_closed(self, i: int) -> Segment:
        """Index closed segment ``i`` whole: every byte of it was written completely,
        and its offsets run up to where the next segment begins (a roll starts the
        next segment at the end offset; compaction keeps each segment's last offset)."""
        seg = self.segments[i]
        size = seg.handle.size()
        if seg.end != size:
            if seg.end > size:
                seg.reset_index()
            problem = seg.scan(size)
            if problem is not None:
                raise seg.corrupt(len(seg.positions), problem)
        following = self.segments[i + 1].base
        if seg.next_offset != following:
            raise seg.corrupt(len(seg.positions), (
                f"the segment ends at byte {size} with offset {seg.next_offset - 1}, but "
                f"the next one begins at offset {following}: the batches of offsets "
                f"{seg.next_offset}-{following - 1} are missing"))
        return seg

    def _index_active(self, seg: Segment, caught_up: bool) -> bool:
        """Index what writers completed in the last segment. Returns True if the
        segment list changed instead (another process rolled, or compacted)."""
        size = seg.handle.size()
        if size == seg.end:
            if not caught_up:
                return False
            # nothing new here: follow a roll by another process, and once a second
            # re-list every segment (compaction renames files in place)
            if self._rolled_elsewhere(seg):
                return True
            return time.monotonic() - self._relisted_at > RELIST_SECONDS and \
                self.refresh(force=True)
        point = self.store.read_recovery()
        if point is None or point.boot != boot_id():
            try:
                with self.store.lock():      # the first reader after a restart recovers
                    self._sync_tail_locked()
            except OSError as exc:
                if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                    raise
                return self._index_read_only(seg, point, size)
            point = self.store.read_recovery()
            assert point is not None
            if self.segments[-1] is not seg:
                return True
            size = seg.handle.size()
        if point.base > seg.base:
            if self.refresh(force=True):
                return True
            limit = size                       # closed meanwhile
        elif point.base < seg.base:
            return False                       # rolled in, nothing written yet
        else:
            limit = point.end
            if limit > size:
                size = seg.handle.size()       # (the write ended after our first look)
        if seg.end > limit:
            seg.reset_index()                  # cut by a recovery after a restart
        problem = seg.scan(min(limit, size))
        if problem is None and size < limit:
            problem = (f"the segment ends at byte {size}, before byte {limit} where "
                       "completed writes end: acknowledged records are missing")
        if problem is not None:
            raise seg.corrupt(len(seg.positions), problem)
        return False

    def _index_read_only(self, seg: Segment, point: RecoveryPoint | None,
                         size: int) -> bool:
        """Index a log this process cannot write (a read-only copy) after a restart:
        only what is sure to be whole; nothing is cut."""
        limit = min(confirmed_end(self.store, seg.base, size, point)[0], size)
        if seg.end > limit:
            seg.reset_index()
        problem = seg.scan(limit, whole=False)
        if problem is not None:
            raise seg.corrupt(len(seg.positions), problem)
        return False

    def end_offset(self) -> int:
        """The offset the next appended record will get."""
        self.refresh()
        try:
            while self.segments and self._index_active(self.segments[-1], caught_up=True):
                pass
        except CorruptRecord:
            # the batch headers cannot be followed to the end; the recovery point
            # still knows where the log ends (consumers see the damage when they read)
            point = self.store.read_recovery()
            if point is None or point.base != self.segments[-1].base:
                raise
            return point.next_offset
        return self.segments[-1].next_offset if self.segments else 0

    def start_offset(self) -> int:
        """The first offset still held (the end offset when the log is empty)."""
        self.refresh()
        for i, seg in enumerate(self.segments[:-1]):
            try:
                self._index_closed(i)
            except CorruptRecord:
                # the start is here even if the damage hides it: a reader starting
                # from "earliest" must meet the damage, not skip it
                first = seg.first_offset()
                return seg.base if first is None else first
            first = seg.first_offset()
            if first is not None:
                return first
        end = self.end_offset()
        if not self.segments:
            return end
        seg = self.segments[-1]
        first = seg.first_offset()
        if first is not None:
            return first
        # nothing indexed: an empty log starts at its end, a damaged one at the damage
        return end if seg.next_offset >= end else seg.base

    def offsets(self) -> tuple[int, int]:
        end = self.end_offset()
        return self.start_offset(), end

    def size_bytes(self) -> int:
        self.refresh()
        return sum(seg.handle.size() for seg in self.segments)

    # -- cleanup -------------------------------------------------------------------
    def cleanup(self, force: bool = True) -> None:
        """Run retention and compaction now. ``force`` first rolls the active segment
        so that everything written before this call is eligible."""
        with self.store.lock():
            seg = self._sync_tail_locked()
            if force and seg.positions:
                self._roll_locked(seg)
            self._cleanup_locked(compact=True, force=force)

    def _cleanup_locked(self, compact: bool, force: bool) -> None:
        self._retention_checked_at = time.monotonic()
        try:
            for i in range(len(self.segments) - 1):
                # retention and compaction judge segments by their index: never act on
                # one that does not index whole (a damaged segment waits for repair)
                self._index_closed(i)
            if self.config.delete:
                apply_retention(self)
                if self.segments:
                    self.transactions.trim_locked(self.segments[0].base)
            if compact and self.config.compact:
                compact_segments(self, force)
        except CorruptRecord:
            if force:
                raise
            log.error("cleanup of %s[%d] skipped: %s", self.topic, self.partition,
                      sys.exc_info()[1])

    def delete_segment_locked(self, seg: Segment) -> None:
        """Under the lock: delete a closed segment (retention)."""
        self.store.delete(seg.base)
        seg.close()
        self.segments.remove(seg)
        self._bases = [s.base for s in self.segments]
        self._version = None

    def forget_version(self) -> None:
        """Make the next ``refresh`` list the segments again (after a rewrite)."""
        self._version = None

    def close(self) -> None:
        self.transactions.close()
        for seg in self.segments:
            seg.close()
        self.segments = []
        self._bases = []
        self._version = None
