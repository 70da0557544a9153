"""Retention and compaction of one partition of the embedded log: what
``Partition.cleanup`` runs under the partition's lock (decision 102)."""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from streamkit.log.segment import (ATTR_CONTROL, ATTR_LOG_APPEND_TIME, BatchHeader,
                                   BatchRow, Committed, Segment, encode_batch,
                                   segment_name)

if TYPE_CHECKING:
    from streamkit.log.partition import Partition

log = logging.getLogger("streamkit.log")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def apply_retention(part: Partition) -> None:
    """Delete the closed segments that retention.ms or retention.bytes let go."""
    closed = part.segments[:-1]
    cfg = part.config
    if cfg.retention_ms >= 0:
        cutoff = _now_ms() - cfg.retention_ms
        for seg in closed:
            if seg.max_timestamp >= cutoff:
                break
            if seg.max_timestamp_batch >= 0 and not seg.verify(seg.max_timestamp_batch):
                # a damaged header could make a new segment look old
                raise seg.corrupt(seg.max_timestamp_batch, (
                    "the batch with the segment's newest timestamp fails its CRC; "
                    "retention keeps the segment"))
            log.info("retention.ms: deleting segment %s of %s[%d]",
                     segment_name(seg.base), part.topic, part.partition)
            part.delete_segment_locked(seg)
    if cfg.retention_bytes >= 0:
        excess = sum(seg.end for seg in part.segments) - cfg.retention_bytes
        for seg in part.segments[:-1]:
            if excess - seg.end < 0:
                break
            excess -= seg.end
            log.info("retention.bytes: deleting segment %s of %s[%d]",
                     segment_name(seg.base), part.topic, part.partition)
            part.delete_segment_locked(seg)

def compact_segments(part: Partition, force: bool) -> None:
    """Keep the latest record of every key in the closed segments; drop keys whose
    latest record is a tombstone. Offsets are kept, so gaps appear. Each changed
    segment is rewritten to a temp file and renamed over the old one.

    Records of aborted transactions are dropped; records of open transactions (at or
    after the last stable offset) and markers are kept as they are and do not count
    as a key's latest record, so a transaction that aborts later cannot have
    displaced the committed value of a key.

    Unless forced, runs only when the closed segments written since the last
    compaction ("dirty") are at least ``min.cleanable.dirty.ratio`` of all closed
    bytes, as Kafka's cleaner: compaction reads the whole partition, so this keeps
    its cost proportional to what was written."""
    closed = part.segments[:-1]
    if not closed:
        return
    if not force:
        cleaned = part.store.read_cleaned()
        total = sum(seg.end for seg in closed)
        dirty = sum(seg.end for seg in closed if seg.base >= cleaned)
        if not total or dirty < part.config.dirty_ratio * total:
            return
    committed = part.committed_view()
    latest, tombstones = _latest_records(part, committed)
    for index, seg in enumerate(part.segments[:-1]):
        batches = []
        dropped = 0
        kept_total = 0
        for header, producer, rows in seg.iter_batches():
            seen = _seen(committed, header, producer)
            first = header[3]
            if seen is None:
                kept = list(rows)
            elif not seen:
                kept = []
            else:
                kept = [r for r in rows if r[2] is None or
                        (latest.get(r[2]) == first + r[0] and r[2] not in tombstones)]
            dropped += len(rows) - len(kept)
            kept_total += len(kept)
            batches.append((header, producer, kept))
        if not dropped:
            continue
        _rewrite(part, index, batches)
        log.info("compacted segment %s of %s[%d]: %d records dropped, %d kept",
                 segment_name(seg.base), part.topic, part.partition, dropped, kept_total)
    part.forget_version()
    part.store.write_cleaned(part.segments[-1].base)


def _seen(committed: Committed, header: BatchHeader, producer: tuple[int, int] | None
          ) -> bool | None:
    """How a read_committed reader sees a batch: True (a plain or committed batch),
    False (a batch of an aborted transaction), None (a marker, or a batch of a
    transaction still open: compaction leaves it as it is)."""
    if producer is None:
        return True
    if header[7] & ATTR_CONTROL or header[3] >= committed.stable:
        return None
    return not committed.aborted(producer[0], header[3])


def _latest_records(part: Partition, committed: Committed
                    ) -> tuple[dict[bytes, int], set[bytes]]:
    """The offset of each key's latest committed record, and the keys whose latest
    record is a tombstone."""
    latest: dict[bytes, int] = {}
    tombstones: set[bytes] = set()
    for seg in part.segments:
        for header, producer, rows in seg.iter_batches():
            if not _seen(committed, header, producer):
                continue
            first = header[3]
            for d, _ts, key, value, _h in rows:
                if key is None:
                    continue
                latest[key] = first + d
                if value is None:
                    tombstones.add(key)
                else:
                    tombstones.discard(key)
    return latest, tombstones


def _rewrite(part: Partition, index: int,
             batches: list[tuple[BatchHeader, tuple[int, int] | None, list[BatchRow]]]
             ) -> None:
    """Replace closed segment ``index`` with ``batches`` (header, producer, the rows
    kept); a batch left empty is dropped unless it is the segment's last (which keeps
    the segment's last offset)."""
    seg = part.segments[index]
    data = []
    for n, (header, producer, kept) in enumerate(batches):
        first, last, maxts, attrs = header[3], header[4], header[6], header[7]
        if not kept and n != len(batches) - 1:
            continue
        new_first = first + kept[0][0] if kept else last
        moved = [(first + r[0] - new_first, r[1], r[2], r[3], r[4]) for r in kept]
        data.append(encode_batch(new_first, last, moved, maxts,
                                 bool(attrs & ATTR_LOG_APPEND_TIME),
                                 producer if kept else None,
                                 bool(attrs & ATTR_CONTROL)))
    part.store.replace(seg.base, b"".join(data))
    seg.close()
    handle = part.store.open(seg.base)
    if handle is None:                  # the topic was deleted meanwhile
        raise part.gone()
    fresh = Segment(seg.base, handle, part.topic, part.partition)
    fresh.scan(fresh.handle.size())
    part.segments[index] = fresh
