"""Kafka's record batch, format v2 (magic 2): read from Produce requests, written into
Fetch responses.

A batch is a 61-byte header (base offset, length, leader epoch, magic, CRC-32C,
attributes, last offset delta, first and max timestamps, producer id and epoch, base
sequence, record count) and its records, each a varint-framed record whose timestamp and
offset are deltas from the header's. The CRC covers everything from the attributes to
the end. The records may be compressed as one block (attribute bits 0-2); this server
reads all five of Kafka's codecs (``compression``; decisions 907 and 930). It writes
uncompressed batches.
"""
from __future__ import annotations

import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import crc32c

from streamkit.types import LOG_APPEND_TIME, Headers, Message, PartitionRecords
from streamkit.wire.compression import (CODECS, MAX_INFLATED, TooLarge, Unreadable,
                                        Unsupported, decompress)

__all__ = ["BatchError", "CODECS", "CONTROL_BATCH_SIZE", "MAX_INFLATED", "ProducedBatch",
           "encode_batch", "encode_control_batch", "read_batches"]

#: Kafka's error codes a batch can be refused with
CORRUPT_MESSAGE = 2
UNSUPPORTED_COMPRESSION_TYPE = 76
UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
MESSAGE_TOO_LARGE = 10

_HEADER = struct.Struct(">qiibIhiqqqhii")
#: the offset of the attributes: where the CRC starts
_CRC_FROM = 21
_CRC = struct.Struct(">I")
_LENGTH_FROM = 12        # the batch length counts the bytes after this
_COMPRESSION = 0x07
_TIMESTAMP_TYPE = 0x08
_TRANSACTIONAL = 0x10
_CONTROL = 0x20


class BatchError(Exception):
    """A batch this server refuses; ``code`` is Kafka's error code for it."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ProducedBatch:
    """The records of one produced batch, as the log takes them, and the idempotent
    producer's id, epoch and first sequence number (-1 when not idempotent)."""

    records: PartitionRecords
    control: bool
    transactional: bool
    producer_id: int = -1
    producer_epoch: int = -1
    base_sequence: int = -1


def read_batches(data: bytes, partition: int) -> Iterator[ProducedBatch]:
    """The batches of a Produce request's record set for ``partition``; raises
    ``BatchError`` for one that is not v2, is cut short, fails its CRC or is compressed
    with a codec this server does not read."""
    pos = 0
    while pos < len(data):
        if len(data) - pos < _HEADER.size:
            raise BatchError(CORRUPT_MESSAGE, "record batch cut short")
        (_base, length, _epoch, magic, crc, attributes, _last_delta, first_ts, _max_ts,
         producer_id, producer_epoch, sequence, count) = _HEADER.unpack_from(data, pos)
        end = pos + _LENGTH_FROM + length
        if magic != 2:
            # Kafka 4 reads only v2, as clients since Kafka 0.11 write to it
            raise BatchError(UNSUPPORTED_FOR_MESSAGE_FORMAT,
                             f"record batch magic {magic}: only v2 is read")
        if length < _HEADER.size - _LENGTH_FROM or end > len(data):
            raise BatchError(CORRUPT_MESSAGE, "record batch length past the data")
        if crc32c.crc32c(data[pos + _CRC_FROM:end]) != crc:
            raise BatchError(CORRUPT_MESSAGE, "record batch CRC-32C mismatch")
        body = _decompress(attributes & _COMPRESSION, data[pos + _HEADER.size:end])
        records = _read_records(body, count, first_ts, partition)
        yield ProducedBatch(records, bool(attributes & _CONTROL),
                            bool(attributes & _TRANSACTIONAL), producer_id,
                            producer_epoch, sequence)
        pos = end


def _decompress(codec: int, body: bytes) -> bytes:
    try:
        return decompress(codec, body)
    except Unreadable as exc:
        raise BatchError(CORRUPT_MESSAGE, str(exc)) from None
    except TooLarge as exc:
        raise BatchError(MESSAGE_TOO_LARGE, str(exc)) from None
    except Unsupported as exc:
        raise BatchError(UNSUPPORTED_COMPRESSION_TYPE, str(exc)) from None


def _varint_at(data: bytes, pos: int) -> tuple[int, int]:
    """The zigzag varint at ``pos`` and the position after it (the slow path of
    ``_read_records``, for varints of more than one byte)."""
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _read_records(body: bytes, count: int, first_ts: int, partition: int
                  ) -> PartitionRecords:
    """The ``count`` records of an uncompressed batch body, as the log's columns (no
    tuple per record, and the log appends them without placing each)."""
    keys: list[bytes | None] = []
    values: list[bytes | None] = []
    deltas: list[int] = []
    headers: list[Headers | None] = []
    with_headers = False
    size = len(body)
    pos = 0
    try:
        for _ in range(count):
            delta, key, value, record_headers, pos = _read_record(body, pos, size)
            keys.append(key)
            values.append(value)
            deltas.append(delta)
            headers.append(record_headers)
            if record_headers is not None:
                with_headers = True
    except (IndexError, ValueError) as exc:
        raise BatchError(CORRUPT_MESSAGE, f"record cut short: {exc}") from None
    if pos != size:
        raise BatchError(CORRUPT_MESSAGE, "bytes after the batch's last record")
    # -1 is Kafka's "no timestamp": the log stamps the records when it writes them
    stamps = [first_ts + delta for delta in deltas] if first_ts >= 0 else None
    return PartitionRecords(keys, values, partition, stamps,
                            headers if with_headers else None)


def _read_record(data: bytes, pos: int, limit: int
                 ) -> tuple[int, bytes | None, bytes | None, Headers | None, int]:
    """(timestamp delta, key, value, headers, the position after) of the record at
    ``pos``. Varints of one and two bytes (sizes up to 8 KiB, deltas) are read inline:
    a call per varint was most of the cost of a produced record."""
    # the record's length
    byte = data[pos]
    if byte < 0x80:
        length, pos = (byte >> 1) ^ -(byte & 1), pos + 1
    elif data[pos + 1] < 0x80:
        length = (byte & 0x7F) | data[pos + 1] << 7
        length, pos = (length >> 1) ^ -(length & 1), pos + 2
    else:
        length, pos = _varint_at(data, pos)
    end = pos + length
    # attributes (unused), then the timestamp delta
    byte = data[pos + 1]
    if byte < 0x80:
        delta, pos = (byte >> 1) ^ -(byte & 1), pos + 2
    else:
        delta, pos = _varint_at(data, pos + 1)
    # the offset delta: the log assigns offsets
    if data[pos] < 0x80:
        pos += 1
    elif data[pos + 1] < 0x80:
        pos += 2
    else:
        pos = _varint_at(data, pos)[1]
    # the key, then the value: varint-sized, -1 for null
    key, pos = _sized_at(data, pos, limit)
    byte = data[pos]
    if byte < 0x80:
        size, pos = (byte >> 1) ^ -(byte & 1), pos + 1
    elif data[pos + 1] < 0x80:
        size = (byte & 0x7F) | data[pos + 1] << 7
        size, pos = (size >> 1) ^ -(size & 1), pos + 2
    else:
        size, pos = _varint_at(data, pos)
    if size < 0:
        value = None
    elif pos + size > limit:
        raise ValueError("value past the record")
    else:
        value, pos = data[pos:pos + size], pos + size
    headers = None
    if data[pos] == 0:                                # no headers: the common case
        pos += 1
    else:
        headers, pos = _headers_at(data, pos, limit)
    if pos != end:
        raise BatchError(CORRUPT_MESSAGE, "record length does not match")
    return delta, key, value, headers, pos


def _sized_at(data: bytes, pos: int, limit: int) -> tuple[bytes | None, int]:
    """The varint-sized byte string (None for size -1) at ``pos``, and the position
    after it."""
    byte = data[pos]
    if byte < 0x80:
        size, pos = (byte >> 1) ^ -(byte & 1), pos + 1
    else:
        size, pos = _varint_at(data, pos)
    if size < 0:
        return None, pos
    end = pos + size
    if end > limit:
        raise ValueError("string past the record")
    return data[pos:end], end


def _headers_at(data: bytes, pos: int, limit: int
                ) -> tuple[list[tuple[str, bytes | None]], int]:
    """A record's headers at ``pos`` (their count first), and the position after."""
    count, pos = _varint_at(data, pos)
    headers = []
    for _ in range(count):
        name, pos = _sized_at(data, pos, limit)
        value, pos = _sized_at(data, pos, limit)
        headers.append(((name or b"").decode("utf-8", "replace"), value))
    return headers, pos


def _varint(value: int) -> bytes:
    """``value`` as a zigzag varint."""
    value = (value << 1) ^ (value >> 63)               # zigzag
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


#: the varints of -1 .. _TABLE_END - 1, by value + 1: sizes, deltas and lengths of
#: most records are in it, and a look-up is a tenth of the cost of encoding
_TABLE_END = 8192
_VARINTS = [_varint(value) for value in range(-1, _TABLE_END)]
_NULL = _VARINTS[0]
_NO_HEADERS = _VARINTS[1]


def _headers_bytes(headers: Sequence[tuple[str, bytes | None]]) -> bytes:
    out = [_varint(len(headers))]
    for name, value in headers:
        encoded = name.encode()
        out += (_varint(len(encoded)), encoded)
        out += (_NULL,) if value is None else (_varint(len(value)), value)
    return b"".join(out)


def encode_batch(messages: Sequence[Message], max_bytes: int) -> tuple[bytes, int]:
    """One uncompressed batch of ``messages`` (all of one timestamp type) from the
    first, as many as fit in ``max_bytes`` but at least one: (the batch, how many)."""
    first = messages[0]
    base_offset, base_ts = first.offset, first.timestamp
    table, end = _VARINTS, _TABLE_END
    # the records' parts, joined once at the end; a record is its size's varint, then
    # attributes (0), timestamp and offset deltas, key, value and headers
    parts: list[bytes] = []
    room = max_bytes - _HEADER.size
    size = used = 0
    max_ts = base_ts
    for message in messages:
        ts = message.timestamp
        delta = ts - base_ts
        ts_v = table[delta + 1] if -1 <= delta < end else _varint(delta)
        delta = message.offset - base_offset
        offset_v = table[delta + 1] if delta < end else _varint(delta)
        key = message.key
        if key is None:
            key_v, key = _NULL, b""
        else:
            key_v = table[len(key) + 1] if len(key) < end else _varint(len(key))
        value = message.value
        if value is None:
            value_v, value = _NULL, b""
        else:
            value_v = table[len(value) + 1] if len(value) < end else _varint(len(value))
        headers = message._headers        # noqa: SLF001 - as the log handed them over
        headers_v = _headers_bytes(headers) if headers else _NO_HEADERS
        length = (1 + len(ts_v) + len(offset_v) + len(key_v) + len(key) + len(value_v)
                  + len(value) + len(headers_v))
        length_v = table[length + 1] if length < end else _varint(length)
        size += len(length_v) + length
        if used and size > room:
            break
        parts += (length_v, b"\0", ts_v, offset_v, key_v, key, value_v, value, headers_v)
        used += 1
        if ts > max_ts:
            max_ts = ts
    records = b"".join(parts)
    last = messages[used - 1]
    attributes = _TIMESTAMP_TYPE if first.timestamp_type == LOG_APPEND_TIME else 0
    header = _HEADER.pack(base_offset, _HEADER.size - _LENGTH_FROM + len(records), 0, 2, 0,
                          attributes, last.offset - base_offset, base_ts, max_ts, -1, -1,
                          -1, used)
    crc = crc32c.crc32c(records, crc32c.crc32c(header[_CRC_FROM:]))
    return header[:17] + _CRC.pack(crc) + header[_CRC_FROM:] + records, used


#: a commit marker's key (version 0, type 1) and value (version 0, coordinator epoch 0)
_COMMIT_KEY = struct.pack(">hh", 0, 1)
_MARKER_VALUE = struct.pack(">hi", 0, 0)


def encode_control_batch(first: int, last: int) -> bytes:
    """A control batch over offsets ``first`` to ``last`` holding one commit marker
    (at ``last``), with no producer: clients read no record from it and fetch from
    ``last + 1`` next, as past the markers of Kafka's transactions (decision 961)."""
    delta = last - first
    record = b"".join((b"\0", _varint(0), _varint(delta), _varint(len(_COMMIT_KEY)),
                       _COMMIT_KEY, _varint(len(_MARKER_VALUE)), _MARKER_VALUE,
                       _varint(0)))
    records = _varint(len(record)) + record
    now = time.time_ns() // 1_000_000
    header = _HEADER.pack(first, _HEADER.size - _LENGTH_FROM + len(records), 0, 2, 0,
                          _CONTROL | _TRANSACTIONAL, delta, now, now, -1, -1, -1, 1)
    crc = crc32c.crc32c(records, crc32c.crc32c(header[_CRC_FROM:]))
    return header[:17] + _CRC.pack(crc) + header[_CRC_FROM:] + records


#: the size of ``encode_control_batch``'s batches, at most
CONTROL_BATCH_SIZE = _HEADER.size + 40


def encode_batches(messages: Sequence[Message], max_bytes: int, at_least_one: bool
                   ) -> tuple[bytes, int]:
    """Batches of ``messages`` (a new one where the timestamp type changes) within
    ``max_bytes``; the first batch's first record even past it when ``at_least_one``
    (as Kafka, so that a large record is not stuck): (the bytes, how many messages)."""
    out = bytearray()
    done = 0
    while done < len(messages):
        run = _same_timestamp_type(messages, done)
        room = max_bytes - len(out)
        if out or not at_least_one:
            if room < _HEADER.size:
                break
        batch, used = encode_batch(run, room)
        if len(batch) > room and (out or not at_least_one):
            break
        out += batch
        done += used
        if len(out) >= max_bytes:
            break
    return bytes(out), done


def _same_timestamp_type(messages: Sequence[Message], start: int) -> Sequence[Message]:
    kind = messages[start].timestamp_type
    end = start
    while end < len(messages) and messages[end].timestamp_type == kind:
        end += 1
    return messages[start:end]
