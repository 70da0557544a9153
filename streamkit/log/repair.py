"""Checking and repairing the embedded log on disk (``streamkit log check|repair``).

``check`` reads every batch of every segment, as Kafka's ``kafka-dump-log --verify``
does: header, CRC, offsets that increase, a body that decodes into the records the
header announces. Damage is reported by topic, partition, segment, byte range and the
offsets it hides. Bytes after the recovery point of the active segment are not damage
but a write that never completed; the next append cuts them.

``repair`` is the only code that removes bytes before the recovery point, and it never
deletes them: each damaged range is first copied into
``<log root>/__quarantine/<topic>/<partition>/`` with a description, then the segment is
rewritten without it. A damaged range that held offsets is replaced by an empty batch
that keeps those offsets, so no offset is ever handed out twice. A topic whose
``topic.json`` is lost gets one rebuilt from its partition directories.
"""
from __future__ import annotations

import json
import logging
import mmap
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from streamkit.errors import CorruptLog, UnknownTopic
from streamkit.log.partition import confirmed_end
from streamkit.log.segment import (
    HEADER_SIZE,
    batch_problem,
    encode_batch,
    next_whole_batch,
    segment_name,
)
from streamkit.log.storage import (
    FileStorage,
    RecoveryPoint,
    boot_id,
    fsync_dir,
    write_atomic,
)

log = logging.getLogger("streamkit.log")

QUARANTINE = "__quarantine"

Buffer = bytes | mmap.mmap


@dataclass(frozen=True)
class Damage:
    """A byte range of a segment that is not whole batches.

    ``first_offset``-``last_offset`` are the offsets it hides (``last_offset`` is None
    when nothing says where they end). ``torn`` marks an incomplete write after the
    recovery point: not damage, the next append cuts it."""

    topic: str
    partition: int
    segment: str
    start: int
    end: int
    first_offset: int
    last_offset: int | None
    problem: str
    torn: bool = False

    @property
    def offsets(self) -> str:
        if self.last_offset is None:
            return f"{self.first_offset}-?"
        if self.last_offset < self.first_offset:
            return "none"
        return f"{self.first_offset}-{self.last_offset}"


@dataclass
class PartitionReport:
    """What ``check_partition`` found in one partition."""

    topic: str
    partition: int
    segments: int = 0
    batches: int = 0
    records: int = 0
    damage: list[Damage] = field(default_factory=list)


@dataclass
class _Walk:
    """The whole batches of one segment, and the damaged ranges between them."""

    batches: list[tuple[int, int]] = field(default_factory=list)     # (start, end) bytes
    records: int = 0
    #: (start, end, first offset, last offset or None, problem)
    damage: list[tuple[int, int, int, int | None, str]] = field(default_factory=list)
    next_offset: int = 0


def _walk(buf: Buffer, start: int, limit: int, next_offset: int,
          resync: bool = True) -> _Walk:
    """Follow the batches of a segment from byte ``start`` to ``limit``; where one is
    not whole, look for the next that is (by its magic, offsets and CRC) and note the
    range between as damage (without ``resync``, the rest is one range)."""
    walk = _Walk(next_offset=next_offset)
    pos = start
    while pos < limit:
        problem, header = batch_problem(buf, pos, limit, walk.next_offset - 1)
        if problem is None:
            end = pos + HEADER_SIZE + header[2]
            walk.batches.append((pos, end))
            walk.records += header[5]
            walk.next_offset = header[4] + 1
            pos = end
            continue
        resume, first = next_whole_batch(buf, pos + 1, limit, walk.next_offset - 1) \
            if resync else (limit, None)
        walk.damage.append((pos, resume, walk.next_offset,
                            None if first is None else first - 1, problem))
        pos = resume
    return walk


@contextmanager
def _mapped(path: Path) -> Iterator[Buffer]:
    """The bytes of a file, mapped (segments can be large)."""
    with open(path, "rb") as f:
        if not os.fstat(f.fileno()).st_size:
            yield b""
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield mapped


def check_partition(storage: FileStorage, topic: str, partition: int) -> PartitionReport:
    """Read every batch of one partition and report the ranges that are not whole."""
    store = storage.partition_store(topic, partition)
    try:
        bases = store.segment_bases()
    except FileNotFoundError:
        raise UnknownTopic(f"topic {topic!r} has no partition {partition}") from None
    report = PartitionReport(topic, partition, segments=len(bases))
    point = store.read_recovery()
    for n, base in enumerate(bases):
        active = n == len(bases) - 1
        with _mapped(store.path / segment_name(base)) as buf:
            size = len(buf)
            limit = min(confirmed_end(store, base, size, point)[0], size) if active \
                else size
            walk = _walk(buf, 0, limit, base)
            # past the recovery point: whole batches count, the first that is not
            # starts a write that never completed
            tail = _walk(buf, limit, size, walk.next_offset, resync=False)
        bound = (bases[n + 1] - 1 if not active else
                 point.next_offset - 1 if point is not None and point.base == base
                 else None)
        for start, end, first, last, problem in walk.damage:
            report.damage.append(Damage(topic, partition, segment_name(base), start, end,
                                        first, bound if last is None else last, problem))
        if tail.damage:
            report.damage.append(Damage(
                topic, partition, segment_name(base), tail.damage[0][0], size,
                tail.damage[0][2], None, "after the recovery point: a write that never "
                "completed, or one in progress (the next append cuts it)", torn=True))
        report.batches += len(walk.batches) + len(tail.batches)
        report.records += walk.records + tail.records
    return report


def _quarantine(storage: FileStorage, damage: Damage, data: bytes) -> Path:
    """Keep ``data`` (the bytes of ``damage``) and a description of it, fsynced."""
    folder = storage.root / QUARANTINE / damage.topic / str(damage.partition)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{damage.segment[:-4]}-byte{damage.start}-{time.time_ns() // 1_000_000}"
    write_atomic(folder / f"{stem}.bin", data)
    description = {**asdict(damage), "bytes": len(data), "moved_at": time.time()}
    write_atomic(folder / f"{stem}.json",
                 json.dumps(description, indent=2, sort_keys=True).encode())
    fsync_dir(folder)
    return folder / f"{stem}.bin"


def _rewritten(buf: Buffer, size: int, damage: list[Damage]) -> bytes:
    """The segment without its damaged ranges; each range that held offsets becomes an
    empty batch keeping them (a gap, as compaction leaves)."""
    parts = []
    pos = 0
    for item in sorted(damage, key=lambda d: d.start):
        parts.append(bytes(buf[pos:item.start]))
        last = item.last_offset
        if last is None:       # nothing says where they end: one offset per byte bounds it
            last = item.first_offset - 1 + (item.end - item.start)
        if last >= item.first_offset:
            parts.append(encode_batch(item.first_offset, last, [], -1, False))
        pos = item.end
    parts.append(bytes(buf[pos:size]))
    return b"".join(parts)


def repair_partition(storage: FileStorage, topic: str, partition: int
                     ) -> list[tuple[Damage, Path]]:
    """Move the damaged ranges of one partition into the quarantine and rewrite its
    segments without them, under the partition's lock. Returns what was moved where.
    The active segment keeps only its whole batches; its recovery point is published
    again at its new end."""
    store = storage.partition_store(topic, partition)
    moved: list[tuple[Damage, Path]] = []
    with store.lock():
        report = check_partition(storage, topic, partition)
        bases = store.segment_bases()
        by_segment: dict[str, list[Damage]] = {}
        for item in report.damage:
            by_segment.setdefault(item.segment, []).append(item)
        for name, damage in by_segment.items():
            base = int(name[:-4])
            path = store.path / name
            with _mapped(path) as buf:
                for item in damage:
                    kept = _quarantine(storage, item, buf[item.start:item.end])
                    moved.append((item, kept))
                    log.warning("%s[%d]: moving bytes %d-%d of segment %s (offsets %s; %s) "
                                "to %s", topic, partition, item.start, item.end, name,
                                item.offsets, item.problem, kept)
                size = min((d.start for d in damage if d.torn), default=len(buf))
                data = _rewritten(buf, size, [d for d in damage if not d.torn])
            store.replace(base, data)
            if base == bases[-1]:
                walk = _walk(data, 0, len(data), base)
                store.write_recovery(RecoveryPoint(base, len(data), walk.next_offset,
                                                   boot_id()))
    return moved


def rebuild_topic_meta(storage: FileStorage, topic: str) -> int | None:
    """Write a new topic.json for a topic whose file is lost or damaged, with as many
    partitions as it has partition directories. Its config is unknown, so nothing is
    deleted by retention until it is set again (``retention.ms=-1``,
    ``retention.bytes=-1``). Returns the partition count, or None if the file is
    fine."""
    try:
        if storage.read_topic(topic) is not None:
            return None
    except CorruptLog:
        pass
    folder = storage.root / topic
    numbers = sorted(int(e) for e in os.listdir(folder) if e.isdigit())
    if not numbers or numbers != list(range(len(numbers))):
        raise CorruptLog(f"topic {topic!r}: partition directories {numbers} are not "
                         "0..N-1; cannot tell how many partitions it had")
    meta = folder / "topic.json"
    if meta.exists():
        _quarantine(storage, Damage(topic, -1, "topic.json", 0, meta.stat().st_size, 0,
                                    None, "damaged topic.json"), meta.read_bytes())
    storage.write_topic(topic, len(numbers), {"retention.ms": "-1",
                                              "retention.bytes": "-1"}, replace=True)
    log.warning("topic %r: rebuilt topic.json with %d partitions; its config was lost "
                "(nothing is deleted by retention until you set it again)", topic,
                len(numbers))
    return len(numbers)
