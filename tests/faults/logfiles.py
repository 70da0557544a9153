"""Reading and damaging segment files the way the fault tests need: where each batch is,
a byte flipped at a chosen place, a body rewritten under a matching CRC. Built on the
format in streamkit.log.segment."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import NamedTuple

from streamkit.log.segment import HEADER, HEADER_SIZE, MAGIC

#: byte offsets of header fields inside a batch
MAGIC_AT, CRC_AT, LENGTH_AT, FIRST_AT, LAST_AT = 0, 4, 8, 12, 20
COUNT_AT, MAX_TIMESTAMP_AT, ATTRIBUTES_AT = 28, 32, 40

#: (start, name) of every field of a batch, in order; the body follows the header
FIELDS = ((MAGIC_AT, "magic"), (CRC_AT, "crc"), (LENGTH_AT, "body length"),
          (FIRST_AT, "first offset"), (LAST_AT, "last offset"),
          (COUNT_AT, "record count"), (MAX_TIMESTAMP_AT, "max timestamp"),
          (ATTRIBUTES_AT, "attributes"), (HEADER_SIZE, "body"))


class Batch(NamedTuple):
    """A batch as its header describes it, in one segment file."""

    path: Path
    pos: int
    size: int
    first: int
    last: int


def segments(root: Path, topic: str, partition: int = 0) -> list[Path]:
    """The segment files of a partition, oldest first."""
    return sorted((root / topic / str(partition)).glob("*.log"))


def batch_spans(data: bytes | bytearray) -> list[tuple[int, int, int, int]]:
    """(position, size, first offset, last offset) of every batch in the bytes of a
    segment, by walking its headers (a header running past the end is left out)."""
    out = []
    pos = 0
    while pos + HEADER_SIZE <= len(data):
        _magic, _crc, blen, first, last, _count, _ts, _attrs = HEADER.unpack_from(data, pos)
        if pos + HEADER_SIZE + blen > len(data):
            break
        out.append((pos, HEADER_SIZE + blen, first, last))
        pos += HEADER_SIZE + blen
    return out


def batches(path: Path) -> list[Batch]:
    """Every batch of a segment file, by walking its headers."""
    return [Batch(path, *span) for span in batch_spans(path.read_bytes())]


def batch_at(root: Path, topic: str, offset: int, partition: int = 0) -> Batch:
    """The batch holding ``offset``."""
    for path in segments(root, topic, partition):
        for batch in batches(path):
            if batch.first <= offset <= batch.last:
                return batch
    raise LookupError(f"no batch holds offset {offset}")


def field_at(at: int) -> str:
    """Name of the batch field holding byte ``at`` of a batch (0 = its first byte)."""
    return next(name for start, name in reversed(FIELDS) if at >= start)


def flip(path: Path, pos: int, mask: int = 0xFF) -> None:
    """XOR the byte at ``pos`` of ``path`` with ``mask``, in place."""
    with open(path, "r+b") as f:
        f.seek(pos)
        byte = f.read(1)[0]
        f.seek(pos)
        f.write(bytes([byte ^ mask]))


def rewrite_body(batch: Batch, body: bytes) -> None:
    """Give ``batch`` a new body under a CRC that matches it (same offsets and record
    count in the header): damage no CRC check can see, only a reader that checks what
    the body holds. Later batches of the file move if the length changes."""
    data = bytearray(batch.path.read_bytes())
    fields = HEADER.unpack_from(data, batch.pos)
    tail = HEADER.pack(MAGIC, 0, len(body), *fields[3:])[8:]
    crc = zlib.crc32(body, zlib.crc32(tail))
    data[batch.pos:batch.pos + batch.size] = MAGIC + struct.pack("<I", crc) + tail + body
    batch.path.write_bytes(bytes(data))
