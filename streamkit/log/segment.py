"""Record batches and segments: the bytes of the embedded log.

A segment holds record batches back to back. Each batch is a fixed header followed by a
msgpack body::

    offset size field
    0      4    magic            b"SKB1"
    4      4    crc32            of bytes 8 .. end of body (zlib.crc32, unsigned)
    8      4    body_length      bytes of msgpack body after the header
    12     8    first_offset     offset of the first record in the body
    20     8    last_offset      last offset this batch accounts for (>= first)
    28     4    record_count     records in the body (0 for a compacted-empty batch)
    32     8    max_timestamp    largest record timestamp in the batch (ms)
    40     1    attributes       bit 0: timestamps are LogAppendTime
    41          body             msgpack list of [offset_delta, timestamp, key, value, headers]

All integers are little-endian. ``offset_delta`` is relative to ``first_offset``;
``headers`` is a list of [str, bytes] pairs or nil. Compaction keeps ``last_offset`` of a
batch even when it drops the batch's last records, so the log's end offset survives.

The index of a segment is kept in memory and rebuilt on open by walking the batch
headers (the bodies are not read), then extended as the file grows.
"""
from __future__ import annotations

import os
import struct
import zlib
from bisect import bisect_left
from typing import Protocol

import msgpack

from streamkit.errors import CorruptRecord
from streamkit.types import CREATE_TIME, LOG_APPEND_TIME, Message

MAGIC = b"SKB1"
HEADER = struct.Struct("<4sIIqqiqB")
HEADER_SIZE = HEADER.size            # 41
ATTR_LOG_APPEND_TIME = 1
#: A header claiming a body larger than this is treated as garbage, not a batch.
MAX_BODY = 1 << 30
SCAN_CHUNK = 1 << 20
READ_CHUNK = 1 << 20

_pack_header = HEADER.pack
_unpack_header = HEADER.unpack_from
_crc32 = zlib.crc32
_packb = msgpack.Packer(use_bin_type=True).pack
_unpackb = msgpack.unpackb


def segment_name(base_offset: int) -> str:
    """File name of the segment whose first batch starts at ``base_offset``."""
    return f"{base_offset:020d}.log"


def encode_batch(first_offset: int, last_offset: int, rows: list, max_timestamp: int,
                 log_append_time: bool) -> bytes:
    """One batch: header + msgpack body of ``rows`` ([delta, ts, key, value, headers])."""
    body = _packb(rows)
    attrs = ATTR_LOG_APPEND_TIME if log_append_time else 0
    tail = struct.pack("<Iqqiq", len(body), first_offset, last_offset, len(rows),
                       max_timestamp) + bytes((attrs,))
    crc = _crc32(body, _crc32(tail))
    return MAGIC + struct.pack("<I", crc) + tail + body


def decode_rows(buf: bytes | memoryview, pos: int) -> tuple[tuple, list]:
    """Header fields and rows of the batch at ``pos`` of ``buf`` (no CRC check)."""
    header = _unpack_header(buf, pos)
    start = pos + HEADER_SIZE
    return header, _unpackb(buf[start:start + header[2]])


class Handle(Protocol):
    """The bytes of one segment: a file or an in-memory buffer."""

    identity: object

    def size(self) -> int: ...
    def pread(self, n: int, pos: int) -> bytes: ...
    def append(self, data: bytes) -> None: ...
    def truncate(self, size: int) -> None: ...
    def fsync(self) -> None: ...
    def close(self) -> None: ...


class FileHandle:
    """A segment file, kept open for reading and appending."""

    __slots__ = ("path", "fd", "identity")

    def __init__(self, path: str, create: bool = False) -> None:
        flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0)
        self.path = path
        self.fd = -1
        self.fd = os.open(path, flags, 0o644)
        self.identity = os.fstat(self.fd).st_ino

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def pread(self, n: int, pos: int) -> bytes:
        return os.pread(self.fd, n, pos)

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)

    def fsync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    __del__ = close          # a broker dropped without close() gives its fds back


class MemoryHandle:
    """A segment held in a bytearray (the memory:// broker)."""

    __slots__ = ("buf", "identity")

    def __init__(self, data: bytes = b"") -> None:
        self.buf = bytearray(data)
        self.identity = id(self)

    def size(self) -> int:
        return len(self.buf)

    def pread(self, n: int, pos: int) -> bytes:
        with memoryview(self.buf) as view:
            return bytes(view[pos:pos + n])

    def append(self, data: bytes) -> None:
        self.buf += data

    def truncate(self, size: int) -> None:
        del self.buf[size:]

    def fsync(self) -> None:
        pass

    def close(self) -> None:
        pass


class Segment:
    """One segment and the in-memory index of its batches.

    ``positions[i]``, ``firsts[i]``, ``lasts[i]``, ``counts[i]`` describe batch ``i``;
    ``end`` is the byte position after the last indexed batch.
    """

    __slots__ = ("base", "handle", "positions", "firsts", "lasts", "counts", "end",
                 "max_timestamp", "topic", "partition")

    def __init__(self, base: int, handle: Handle, topic: str, partition: int) -> None:
        self.base = base
        self.handle = handle
        self.topic = topic
        self.partition = partition
        self.positions: list[int] = []
        self.firsts: list[int] = []
        self.lasts: list[int] = []
        self.counts: list[int] = []
        self.end = 0
        self.max_timestamp = -1

    # -- index --------------------------------------------------------------------
    def scan(self) -> str:
        """Index batches appended since the last scan.

        Returns "ok" when the index reaches the end of the bytes, "partial" when the
        bytes end inside a batch (a write in progress, or a torn tail), and "bad" when
        the bytes after ``end`` are not a batch header (garbage).
        """
        size = self.handle.size()
        pos = self.end
        span = SCAN_CHUNK
        while pos < size:
            chunk = self.handle.pread(min(span, size - pos), pos)
            if len(chunk) < HEADER_SIZE:
                return "partial"
            off = 0
            while off + HEADER_SIZE <= len(chunk):
                magic, _crc, blen, first, last, count, maxts, _attrs = \
                    _unpack_header(chunk, off)
                if magic != MAGIC or blen > MAX_BODY or last < first or count < 0:
                    self.end = pos + off
                    return "bad"
                total = HEADER_SIZE + blen
                if pos + off + total > size:
                    self.end = pos + off
                    return "partial"
                self.positions.append(pos + off)
                self.firsts.append(first)
                self.lasts.append(last)
                self.counts.append(count)
                if maxts > self.max_timestamp:
                    self.max_timestamp = maxts
                off += total
            # big batches: read just the next header instead of the bodies around it
            span = HEADER_SIZE if total > 8192 else SCAN_CHUNK
            pos += off
            self.end = pos
        return "ok" if pos == size else "partial"

    def check_last_batch(self) -> bool:
        """True if the last indexed batch passes its CRC (used on open, under lock)."""
        if not self.positions:
            return True
        pos = self.positions[-1]
        data = self.handle.pread(self.end - pos, pos)
        return _crc32(data[8:]) == _unpack_header(data, 0)[1]

    def drop_last_batch(self) -> None:
        self.end = self.positions.pop()
        self.firsts.pop()
        self.lasts.pop()
        self.counts.pop()

    def reset_index(self) -> None:
        self.positions.clear()
        self.firsts.clear()
        self.lasts.clear()
        self.counts.clear()
        self.end = 0
        self.max_timestamp = -1

    @property
    def next_offset(self) -> int | None:
        """Offset after the last indexed batch, or None if the segment is empty."""
        return self.lasts[-1] + 1 if self.lasts else None

    def first_offset(self) -> int | None:
        """Offset of the first record held here, or None if it holds none."""
        for first, count in zip(self.firsts, self.counts):
            if count:
                return first
        return None

    def size(self) -> int:
        return self.end

    # -- reading ------------------------------------------------------------------
    def read(self, offset: int, max_records: int, out: list[Message]) -> int:
        """Append to ``out`` up to ``max_records`` messages with offset >= ``offset``.

        Returns the offset to continue from: past the last batch read, or ``offset``
        if this segment has nothing at or after it.
        """
        i = bisect_left(self.lasts, offset)
        n = len(self.positions)
        if i >= n:
            return offset
        topic, partition = self.topic, self.partition
        append = out.append
        new_message = object.__new__
        wanted = max_records
        next_offset = offset
        while i < n and wanted > 0:
            # one pread covering several batches, up to READ_CHUNK bytes
            start = self.positions[i]
            j = i + 1
            records = self.counts[i]
            while j < n and records < wanted and self.positions[j] - start < READ_CHUNK:
                records += self.counts[j]
                j += 1
            stop = self.positions[j] if j < n else self.end
            buf = self.handle.pread(stop - start, start)
            view = memoryview(buf)
            for k in range(i, j):
                pos = self.positions[k] - start
                magic, crc, blen, first, last, count, _mt, attrs = _unpack_header(buf, pos)
                body_end = pos + HEADER_SIZE + blen
                if magic != MAGIC or _crc32(view[pos + 8:body_end]) != crc:
                    raise CorruptRecord(
                        f"corrupt record batch in {topic}[{partition}] at offset "
                        f"{self.firsts[k]} (segment {segment_name(self.base)}, byte "
                        f"{self.positions[k]}): CRC mismatch", topic, partition,
                        self.firsts[k])
                next_offset = last + 1
                if not count:
                    continue
                tstype = LOG_APPEND_TIME if attrs & ATTR_LOG_APPEND_TIME else CREATE_TIME
                rows = _unpackb(view[pos + HEADER_SIZE:body_end], use_list=False)
                if first < offset:
                    rows = [r for r in rows if first + r[0] >= offset]
                if len(rows) > wanted:
                    rows = rows[:wanted]
                    next_offset = first + rows[-1][0] + 1
                wanted -= len(rows)
                # object.__new__ and slot stores: a third cheaper than Message(...)
                # (no __init__ frame per message), and the same object
                for d, ts, key, value, hs in rows:
                    m = new_message(Message)
                    m.topic = topic
                    m.partition = partition
                    m.offset = first + d
                    m.timestamp = ts
                    m.timestamp_type = tstype
                    m.key = key
                    m.value = value
                    m._headers = hs   # a list on first read (Message.headers)
                    append(m)
                if wanted <= 0:
                    return next_offset
            i = j
        return next_offset

    def iter_batches(self):
        """Yield (header, rows) of every indexed batch, checking CRCs."""
        for k, pos in enumerate(self.positions):
            stop = self.positions[k + 1] if k + 1 < len(self.positions) else self.end
            buf = self.handle.pread(stop - pos, pos)
            header = _unpack_header(buf, 0)
            if header[0] != MAGIC or _crc32(memoryview(buf)[8:]) != header[1]:
                raise CorruptRecord(
                    f"corrupt record batch in {self.topic}[{self.partition}] at offset "
                    f"{self.firsts[k]} (segment {segment_name(self.base)})",
                    self.topic, self.partition, self.firsts[k])
            yield header, _unpackb(memoryview(buf)[HEADER_SIZE:])

    def close(self) -> None:
        self.handle.close()
