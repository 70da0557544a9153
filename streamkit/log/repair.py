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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from streamkit.errors import CorruptLog, UnknownTopic
from streamkit.log.config import TopicConfig
from streamkit.log.partition import (TORN_WRITE, UNSYNCED_AT_RESTART,
                                     UNSYNCED_WITHOUT_POINT, Partition, confirmed_end)
from streamkit.log.segment import (HEADER_SIZE, batch_problem, encode_batch,
                                   next_whole_batch, segment_name)
from streamkit.log.storage import (FilePartitionStore, FileStorage, RecoveryPoint,
                                   fsync_dir, write_atomic)

log = logging.getLogger("streamkit.log")

QUARANTINE = "__quarantine"

Buffer = bytes | mmap.mmap
#: A range of a segment that is not whole batches: (start byte, end byte, first offset,
#: last offset or None if nothing says, problem).
Range = tuple[int, int, int, int | None, str]


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
    damage: list[Range] = field(default_factory=list)
    next_offset: int = 0


def _walk(buf: Buffer, start: int, limit: int, next_offset: int,
          resync: bool = True, origin: int = 0) -> _Walk:
    """Follow the batches of a segment from byte ``start`` to ``limit``; where one is
    not whole, look for the next that is (by its magic, offsets and CRC) and note the
    range between as damage (without ``resync``, the rest is one range). ``buf`` holds
    the segment from its byte ``origin`` on (messages name bytes of the segment)."""
    walk = _Walk(next_offset=next_offset)
    pos = start
    while pos < limit:
        problem, header = batch_problem(buf, pos, limit, walk.next_offset - 1,
                                        origin + pos)
        if problem is None:
            assert header is not None
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
def _mapped(path: Path, length: int | None = None) -> Iterator[Buffer]:
    """The first ``length`` bytes of a file (all of it if None), mapped: segments can
    be large. Only bytes no writer can cut may be mapped (a read past a cut kills the
    process with SIGBUS): a closed segment, or the active one up to its recovery
    point."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size if length is None else length
        if not size:
            yield b""
            return
        with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mapped:
            yield mapped


def _closed_damage(walk: _Walk, size: int, following: int) -> list[Range]:
    """The damaged ranges of a closed segment, with the offsets each hides: up to the
    next whole batch, or to where the next segment begins; and the offsets missing at
    its end, if it stops short of them (batches lost at the end, or all of them)."""
    damage: list[Range] = [
        (start, end, first, following - 1 if last is None else last, problem)
        for start, end, first, last, problem in walk.damage]
    ran_to_end = bool(damage) and damage[-1][1] == size
    if not ran_to_end and walk.next_offset < following:
        damage.append((size, size, walk.next_offset, following - 1,
                       (f"the segment ends at byte {size} with offset "
                        f"{walk.next_offset - 1}, but the next one begins at offset "
                        f"{following}: the batches of the offsets between are missing")))
    return damage


def _active_damage(store: FilePartitionStore, base: int, path: Path,
                   point: RecoveryPoint | None
                   ) -> tuple[list[Range], list[Range], _Walk, int]:
    """The damage of the active segment, its incomplete writes, its walk and the byte
    where the completed writes end (``confirmed_end``). Bytes past that point are
    read with ``pread``, never mapped: a writer may cut them meanwhile."""
    size = path.stat().st_size
    confirmed, same_boot = confirmed_end(store, base, size, point)
    limit = min(confirmed, size)
    bound = point.next_offset - 1 if point is not None and point.base == base else None
    with _mapped(path, limit) as buf:
        walk = _walk(buf, 0, limit, base)
    damage = [(start, end, first, bound if last is None else last, problem)
              for start, end, first, last, problem in walk.damage]
    ran_to_end = bool(damage) and damage[-1][1] == limit
    if size < confirmed and not ran_to_end and bound is not None and \
            walk.next_offset <= bound:
        damage.append((size, size, walk.next_offset, bound,
                       (f"the segment ends at byte {size}, before byte {confirmed} where "
                        "completed writes end: acknowledged records are missing")))
    with open(path, "rb") as f:
        tail = os.pread(f.fileno(), max(size - limit, 0), limit)
    # without a point, only a suffix that nothing whole follows can be a torn write
    after = _walk(tail, 0, len(tail), walk.next_offset, resync=point is None,
                  origin=limit)
    torn: list[Range] = []
    for start, end, first, last, problem in after.damage:
        if end < len(tail):
            damage.append((limit + start, limit + end, first, last, problem))
        else:
            why = TORN_WRITE if same_boot else \
                UNSYNCED_AT_RESTART if point is not None else UNSYNCED_WITHOUT_POINT
            torn.append((limit + start, size, first, None,
                         f"{problem}: {why}; the next append cuts it"))
    walk.batches += after.batches
    walk.records += after.records
    return damage, torn, walk, limit


def check_partition(storage: FileStorage, topic: str, partition: int) -> PartitionReport:
    """Read every batch of one partition and report the ranges that are not whole:
    damage, and writes that never completed (``torn``: the next append cuts those)."""
    store = storage.partition_store(topic, partition)
    try:
        bases = store.segment_bases()
    except FileNotFoundError:
        raise UnknownTopic(f"topic {topic!r} has no partition {partition}") from None
    report = PartitionReport(topic, partition, segments=len(bases))
    point = store.read_recovery()
    for n, base in enumerate(bases):
        name = segment_name(base)
        if n < len(bases) - 1:
            with _mapped(store.path / name) as buf:
                walk = _walk(buf, 0, len(buf), base)
                damage = _closed_damage(walk, len(buf), bases[n + 1])
            torn: list[Range] = []
        else:
            damage, torn, walk, _ = _active_damage(store, base, store.path / name, point)
        for start, end, first, last, problem in damage:
            report.damage.append(Damage(topic, partition, name, start, end, first, last,
                                        problem))
        for start, end, first, last, problem in torn:
            report.damage.append(Damage(topic, partition, name, start, end, first, last,
                                        problem, torn=True))
        report.batches += len(walk.batches)
        report.records += walk.records
    store.close()
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


def _rewritten(buf: Buffer, stop: int, damage: list[Damage]
               ) -> tuple[bytes, Callable[[int], int]]:
    """The first ``stop`` bytes of a segment without its damaged ranges, each range that
    held offsets replaced by an empty batch keeping them (a gap, as compaction
    leaves); and where each old byte position lands in the new bytes."""
    parts: list[bytes] = []
    moves: list[tuple[int, int, int]] = []          # (old start, old end, new end)
    pos = new = 0
    for item in sorted(damage, key=lambda d: d.start):
        parts.append(bytes(buf[pos:item.start]))
        new += item.start - pos
        last = item.last_offset
        if last is None:       # nothing says where they end: one offset per byte bounds it
            last = item.first_offset - 1 + (item.end - item.start)
        if last >= item.first_offset:
            parts.append(encode_batch(item.first_offset, last, [], -1, False))
            new += len(parts[-1])
        moves.append((item.start, item.end, new))
        pos = item.end
    parts.append(bytes(buf[pos:stop]))

    def moved_to(old: int) -> int:
        """Where byte ``old`` is now (a byte inside a damaged range: after its gap)."""
        shift = 0
        for start, end, new_end in moves:
            if old < start:
                break
            if old < end:
                return new_end
            shift = new_end - end
        return old + shift
    return b"".join(parts), moved_to


def repair_partition(storage: FileStorage, topic: str, partition: int
                     ) -> list[tuple[Damage, Path]]:
    """Move the damaged ranges of one partition into the quarantine and rewrite its
    segments without them, under the partition's lock; returns what was moved where.

    A range that held offsets becomes an empty batch that keeps them. In the active
    segment only the damage before the recovery point is moved: the bytes after it are
    kept in place, the recovery point and the fsynced mark follow them to their new
    position, and the partition's own recovery then treats them as any append would
    (a torn write is cut; after a restart, unsynced bytes are cut and the offsets they
    had are skipped), so no offset the log ever handed out is handed out again."""
    store = storage.partition_store(topic, partition)
    meta = storage.read_topic(topic)
    if meta is None:
        raise UnknownTopic(f"topic {topic!r} does not exist")
    moved: list[tuple[Damage, Path]] = []
    with store.lock():
        report = check_partition(storage, topic, partition)
        bases = store.segment_bases()
        for name in sorted({d.segment for d in report.damage if not d.torn}):
            damage = [d for d in report.damage if d.segment == name and not d.torn]
            moved += _repair_segment(storage, store, int(name[:-4]), damage,
                                     active=int(name[:-4]) == bases[-1])
        # cut what never completed, publish the point: what every append does first
        Partition(topic, partition, store, TopicConfig(meta[1])).recover_locked()
    store.close()
    return moved


def _repair_segment(storage: FileStorage, store: FilePartitionStore, base: int,
                    damage: list[Damage], active: bool) -> list[tuple[Damage, Path]]:
    """Quarantine ``damage`` of one segment and rewrite it without it (under the
    partition's lock: no writer can cut the file while it is mapped)."""
    path = store.path / segment_name(base)
    moved = []
    with _mapped(path) as buf:
        for item in damage:
            kept = _quarantine(storage, item, bytes(buf[item.start:item.end]))
            moved.append((item, kept))
            log.warning("%s[%d]: moving bytes %d-%d of segment %s (offsets %s; %s) to %s",
                        item.topic, item.partition, item.start, item.end, item.segment,
                        item.offsets, item.problem, kept)
        size = len(buf)
        data, moved_to = _rewritten(buf, size, damage)
    store.replace(base, data)
    if active:
        # the recovery point and the fsynced mark keep pointing at the same bytes (a
        # point past a segment cut short: at its new end), so recovery judges the rest
        # as before, and never reuses an offset it knew
        point = store.read_recovery()
        if point is not None and point.base == base:
            store.write_recovery(point._replace(end=moved_to(min(point.end, size))))
        with store.sync_lock() as (synced_base, synced_end):
            if synced_base == base:
                store.set_synced((base, moved_to(min(synced_end, size))))
    return moved


def rebuild_topic_meta(storage: FileStorage, topic: str
                       ) -> tuple[int | None, dict[str, str]]:
    """Write a new topic.json for a topic whose file is lost or damaged, with as many
    partitions as it has partition directories; returns (partitions, config), or
    (None, {}) if the file is fine. Its config is lost: a topic that was compacted (a
    partition holds a ``cleaned`` mark, or the name ends in ``-changelog``) gets
    ``cleanup.policy=compact``, any other ``retention.ms=-1`` and ``retention.bytes=-1``
    (nothing is deleted until the config is set again with ``topics alter``)."""
    try:
        if storage.read_topic(topic) is not None:
            return None, {}
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
    compacted = topic.endswith("-changelog") or any(
        (folder / str(n) / "cleaned").exists() for n in numbers)
    config = {"cleanup.policy": "compact"} if compacted else \
        {"retention.ms": "-1", "retention.bytes": "-1"}
    storage.write_topic(topic, len(numbers), config, replace=True)
    log.warning("topic %r: rebuilt topic.json with %d partitions and config %s; the rest "
                "of its config was lost", topic, len(numbers), config)
    return len(numbers), config
