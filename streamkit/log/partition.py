"""One partition of the embedded log: appends, reads, offsets, rolls, retention and
compaction, over a partition store (files or memory).

Every change to a partition happens under the store's lock (an flock across
processes), after re-reading whatever other processes appended, so offsets stay dense
however many processes write. Reads take no lock: batches are only ever appended, a
reader indexes a batch once all of its bytes are there, and compaction and retention
replace or delete whole segment files, which a reader notices and re-resolves.
"""
from __future__ import annotations

import logging
import time
from bisect import bisect_right
from collections.abc import Sequence

from streamkit.errors import CorruptRecord, UnknownTopic
from streamkit.log.config import TopicConfig
from streamkit.log.segment import Segment, encode_batch, segment_name
from streamkit.types import Message

log = logging.getLogger("streamkit.log")

#: Records per batch written: a reader decodes whole batches, so keep them modest.
MAX_BATCH_RECORDS = 500
#: How often a writing process checks time-based retention on its own.
RETENTION_CHECK_SECONDS = 30.0
#: How often an idle reader lists the directory even if its mtime did not change
#: (directory mtimes have a coarse clock on some file systems).
RELIST_SECONDS = 1.0

Row = tuple  # (key, value, headers, timestamp or None)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Partition:
    """One topic partition on one process. Not thread-safe: one per broker."""

    def __init__(self, topic: str, partition: int, store, config: TopicConfig) -> None:
        self.topic = topic
        self.partition = partition
        self.store = store
        self.config = config
        self.segments: list[Segment] = []
        self._bases: list[int] = []
        self._version: object = None
        self._tail_checked = False
        self._relisted_at = 0.0
        self._retention_checked_at = time.monotonic()
        self._started: tuple[int, int] = (-1, 0)       # (segment base, rolled in at ms)

    # -- segment list ----------------------------------------------------------------
    def _gone(self) -> UnknownTopic:
        return UnknownTopic(f"topic {self.topic!r} partition {self.partition} no longer "
                            "exists (deleted)")

    def refresh(self, force: bool = False) -> None:
        """Re-read the list of segments if another process (or cleanup) changed it."""
        try:
            version = self.store.version()
        except FileNotFoundError:
            self.close()
            raise self._gone() from None
        if version == self._version and not force:
            return
        self._version = version
        self._relisted_at = time.monotonic()
        try:
            bases = self.store.segment_bases()
        except FileNotFoundError:
            self.close()
            raise self._gone() from None
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
            seg = Segment(base, handle, self.topic, self.partition)
            seg.scan()
            segments.append(seg)
        for seg in old.values():
            seg.close()
        self.segments = segments
        self._bases = [seg.base for seg in segments]

    def _sync_tail_locked(self) -> Segment:
        """Under the lock: learn what other processes appended, truncate a torn tail,
        and return the active (last) segment."""
        self.refresh()
        if not self.segments:
            # every segment vanished (should not happen): start one at the known end
            self.segments = [Segment(0, self.store.create(0), self.topic, self.partition)]
            self._bases = [0]
        seg = self.segments[-1]
        status = seg.scan()
        if self._rolled_elsewhere(seg):
            seg = self.segments[-1]
            status = seg.scan()
        torn = status != "ok"
        if not self._tail_checked:
            self._tail_checked = True
            if not torn and not seg.check_last_batch():
                seg.drop_last_batch()
                torn = True
        if torn:
            size = seg.handle.size()
            log.warning("truncated a torn tail of %s[%d]: %d bytes after offset %s in "
                        "segment %s (a write that never completed)", self.topic,
                        self.partition, size - seg.end, seg.next_offset,
                        segment_name(seg.base))
            seg.handle.truncate(seg.end)
        return seg

    def _rolled_elsewhere(self, seg: Segment) -> bool:
        """True (and the segment list re-read) if another process rolled past ``seg``:
        then a segment named after ``seg``'s end offset exists. Checked by name because
        a directory's mtime may miss it (its clock can be coarse)."""
        if seg is self.segments[-1] and seg.lasts and \
                self.store.exists(seg.lasts[-1] + 1):
            self.refresh(force=True)
            return True
        return False

    def _next_offset(self) -> int:
        seg = self.segments[-1]
        return seg.lasts[-1] + 1 if seg.lasts else seg.base

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

    def _roll_locked(self) -> Segment:
        """Close the active segment and start a new one at the next offset."""
        base = self._next_offset()
        self._started = (base, _now_ms())
        self.store.write_rolled(self._started)
        seg = Segment(base, self.store.create(base), self.topic, self.partition)
        self.segments.append(seg)
        self._bases.append(base)
        self._version = None
        return seg

    # -- append --------------------------------------------------------------------
    def append(self, rows: Sequence[Row]) -> tuple[int, list[int], tuple]:
        """Append records; return (first offset, timestamps, fsync mark)."""
        now = _now_ms()
        if self.config.log_append_time:
            stamps = [now] * len(rows)
        else:
            stamps = [now if r[3] is None else r[3] for r in rows]
        lat = self.config.log_append_time
        with self.store.lock():
            seg = self._sync_tail_locked()
            rolled = False
            if seg.positions and (seg.end >= self.config.segment_bytes or
                                  now - self._segment_started(seg) >= self.config.segment_ms):
                seg = self._roll_locked()
                rolled = True
            first = self._next_offset()
            chunks = []
            pos = seg.end
            for start in range(0, len(rows), MAX_BATCH_RECORDS):
                part = rows[start:start + MAX_BATCH_RECORDS]
                ts = stamps[start:start + MAX_BATCH_RECORDS]
                body = [(i, t, r[0], r[1], r[2] or None)
                        for i, (r, t) in enumerate(zip(part, ts))]
                base = first + start
                maxts = max(ts)
                data = encode_batch(base, base + len(part) - 1, body, maxts, lat)
                chunks.append(data)
                seg.positions.append(pos)
                seg.firsts.append(base)
                seg.lasts.append(base + len(part) - 1)
                seg.counts.append(len(part))
                pos += len(data)
                if maxts > seg.max_timestamp:
                    seg.max_timestamp = maxts
            try:
                seg.handle.append(b"".join(chunks))
            except BaseException:
                seg.reset_index()
                seg.scan()
                raise
            seg.end = end = pos
            if rolled or time.monotonic() - self._retention_checked_at > \
                    RETENTION_CHECK_SECONDS:
                self._cleanup_locked(compact=rolled, force=False)
        return first, stamps, (seg.base, end, seg.handle)

    def fsync(self, mark: tuple) -> None:
        """Make everything up to ``mark`` durable, sharing fsyncs between processes:
        whoever holds the sync lock fsyncs all bytes written so far and records it."""
        base, end, handle = mark
        with self.store.sync_lock() as synced:
            if synced[0] == base and synced[1] >= end:
                return
            # (a mark in a later segment says nothing about this one: a roll does not
            # fsync, so fsync this segment; that is cheap if someone already did)
            if getattr(handle, "fd", 0) < 0:
                handle = self.store.open(base)
                if handle is None:
                    return                       # deleted by retention meanwhile
            size = handle.size()
            handle.fsync()
            if (base, size) > synced:
                self.store.set_synced((base, size))

    # -- read ----------------------------------------------------------------------
    def read(self, offset: int, max_records: int) -> list[Message]:
        """Up to ``max_records`` messages at offsets >= ``offset`` (none if caught up)."""
        self.refresh()
        out: list[Message] = []
        segments = self.segments
        if not segments:
            return out
        i = max(bisect_right(self._bases, offset) - 1, 0)
        last = len(segments) - 1
        while i <= last:
            seg = segments[i]
            if i == last:
                if not seg.lasts or offset > seg.lasts[-1]:
                    seg.scan()
                    if not out and (seg.next_offset is None or offset >= seg.next_offset):
                        self._caught_up(seg)
                        if self.segments is not segments:
                            return self._read_again(offset, max_records)
            elif seg.end != seg.handle.size() and seg.scan() != "ok":
                raise CorruptRecord(
                    f"corrupt data in {self.topic}[{self.partition}] after offset "
                    f"{seg.next_offset} (segment {segment_name(seg.base)})",
                    self.topic, self.partition, seg.next_offset or seg.base)
            try:
                offset = seg.read(offset, max_records - len(out), out)
            except CorruptRecord:
                # a reader may have indexed a torn tail that a writer has since
                # truncated and overwritten: re-index once before believing it
                seg.reset_index()
                seg.scan()
                offset = seg.read(offset, max_records - len(out), out)
            if len(out) >= max_records:
                break
            i += 1
        return out

    def _read_again(self, offset: int, max_records: int) -> list[Message]:
        """Read after the segment list changed under ``read``."""
        out: list[Message] = []
        if not self.segments:
            return out
        self.segments[-1].scan()
        i = max(bisect_right(self._bases, offset) - 1, 0)
        for seg in self.segments[i:]:
            offset = seg.read(offset, max_records - len(out), out)
            if len(out) >= max_records:
                break
        return out

    def _caught_up(self, seg: Segment) -> None:
        """Nothing new in the last known segment: follow a roll by another process, and
        once a second re-check every segment (compaction renames files in place)."""
        if self._rolled_elsewhere(seg):
            return
        if time.monotonic() - self._relisted_at > RELIST_SECONDS:
            self.refresh(force=True)

    def end_offset(self) -> int:
        """The offset the next appended record will get."""
        self.refresh()
        if not self.segments:
            return 0
        seg = self.segments[-1]
        seg.scan()
        if self._rolled_elsewhere(seg):
            seg = self.segments[-1]
            seg.scan()
        return seg.next_offset if seg.next_offset is not None else seg.base

    def start_offset(self) -> int:
        """The first offset still held (the end offset when the log is empty)."""
        self.refresh()
        for seg in self.segments:
            first = seg.first_offset()
            if first is not None:
                return first
        return self.end_offset()

    def offsets(self) -> tuple[int, int]:
        end = self.end_offset()
        return self.start_offset(), end

    def size_bytes(self) -> int:
        self.refresh()
        return sum(seg.end for seg in self.segments)

    # -- cleanup -------------------------------------------------------------------
    def cleanup(self, force: bool = True) -> None:
        """Run retention and compaction now. ``force`` first rolls the active segment
        so that everything written before this call is eligible."""
        with self.store.lock():
            seg = self._sync_tail_locked()
            if force and seg.positions:
                self._roll_locked()
            self._cleanup_locked(compact=True, force=force)

    def _cleanup_locked(self, compact: bool, force: bool) -> None:
        self._retention_checked_at = time.monotonic()
        try:
            if self.config.delete:
                self._retention_locked()
            if compact and self.config.compact:
                self._compact_locked(force)
        except CorruptRecord:
            if force:
                raise
            log.exception("cleanup of %s[%d] failed", self.topic, self.partition)

    def _delete_segment(self, seg: Segment) -> None:
        self.store.delete(seg.base)
        seg.close()
        self.segments.remove(seg)
        self._bases = [s.base for s in self.segments]
        self._version = None

    def _retention_locked(self) -> None:
        closed = self.segments[:-1]
        cfg = self.config
        if cfg.retention_ms >= 0:
            cutoff = _now_ms() - cfg.retention_ms
            for seg in closed:
                if seg.max_timestamp >= cutoff:
                    break
                log.info("retention.ms: deleting segment %s of %s[%d]",
                         segment_name(seg.base), self.topic, self.partition)
                self._delete_segment(seg)
        if cfg.retention_bytes >= 0:
            excess = sum(seg.end for seg in self.segments) - cfg.retention_bytes
            for seg in self.segments[:-1]:
                if excess - seg.end < 0:
                    break
                excess -= seg.end
                log.info("retention.bytes: deleting segment %s of %s[%d]",
                         segment_name(seg.base), self.topic, self.partition)
                self._delete_segment(seg)

    def _compact_locked(self, force: bool) -> None:
        """Keep the latest record of every key in the closed segments; drop keys whose
        latest record is a tombstone. Offsets are kept, so gaps appear. Each changed
        segment is rewritten to a temp file and renamed over the old one.

        Unless forced, runs only when the closed segments written since the last
        compaction ("dirty") are at least ``min.cleanable.dirty.ratio`` of all closed
        bytes, as Kafka's cleaner: compaction reads the whole partition, so this keeps
        its cost proportional to what was written."""
        closed = self.segments[:-1]
        if not closed:
            return
        if not force:
            cleaned = self.store.read_cleaned()
            total = sum(seg.end for seg in closed)
            dirty = sum(seg.end for seg in closed if seg.base >= cleaned)
            if not total or dirty < self.config.dirty_ratio * total:
                return
        latest: dict[bytes, int] = {}
        tombstones: set[bytes] = set()
        for seg in self.segments:
            for header, rows in seg.iter_batches():
                first = header[3]
                for d, _ts, key, value, _h in rows:
                    if key is None:
                        continue
                    latest[key] = first + d
                    if value is None:
                        tombstones.add(key)
                    else:
                        tombstones.discard(key)
        for index, seg in enumerate(self.segments[:-1]):
            batches = []
            dropped = 0
            kept_total = 0
            for header, rows in seg.iter_batches():
                first, last, maxts, attrs = header[3], header[4], header[6], header[7]
                kept = [r for r in rows if r[2] is None or
                        (latest.get(r[2]) == first + r[0] and r[2] not in tombstones)]
                dropped += len(rows) - len(kept)
                kept_total += len(kept)
                batches.append((first, last, maxts, attrs, kept))
            if not dropped:
                continue
            data = []
            for n, (first, last, maxts, attrs, kept) in enumerate(batches):
                if not kept and n != len(batches) - 1:
                    continue
                new_first = first + kept[0][0] if kept else last
                rows = [[first + r[0] - new_first, r[1], r[2], r[3], r[4]] for r in kept]
                data.append(encode_batch(new_first, last, rows, maxts, bool(attrs & 1)))
            self.store.replace(seg.base, b"".join(data))
            log.info("compacted segment %s of %s[%d]: %d records dropped, %d kept",
                     segment_name(seg.base), self.topic, self.partition, dropped,
                     kept_total)
            seg.close()
            fresh = Segment(seg.base, self.store.open(seg.base), self.topic, self.partition)
            fresh.scan()
            self.segments[index] = fresh
        self._version = None
        self.store.write_cleaned(self.segments[-1].base)

    def close(self) -> None:
        for seg in self.segments:
            seg.close()
        self.segments = []
        self._bases = []
        self._version = None
