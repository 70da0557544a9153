"""Kafka's record batch, format v2 (magic 2): read from Produce requests, written into
Fetch responses.

A batch is a 61-byte header (base offset, length, leader epoch, magic, CRC-32C,
attributes, last offset delta, first and max timestamps, producer id and epoch, base
sequence, record count) and its records, each a varint-framed record whose timestamp and
offset are deltas from the header's. The CRC covers everything from the attributes to
the end. The records may be compressed as one block (attribute bits 0-2); this server
reads none and gzip, and answers UNSUPPORTED_COMPRESSION_TYPE for the others (decision
907). It writes uncompressed batches.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import crc32c

from streamkit.types import LOG_APPEND_TIME, Message, OutgoingRecord

__all__ = ["BatchError", "ProducedBatch", "encode_batch", "read_batches", "CODECS"]

#: Kafka's error codes a batch can be refused with
CORRUPT_MESSAGE = 2
UNSUPPORTED_COMPRESSION_TYPE = 76
UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
MESSAGE_TOO_LARGE = 10
#: the most bytes one compressed batch may inflate to (a small request must not make
#: the server allocate without bound)
MAX_INFLATED = 256 * 1024 * 1024

_HEADER = struct.Struct(">qiibIhiqqqhii")
#: the offset of the attributes: where the CRC starts
_CRC_FROM = 21
_LENGTH_FROM = 12        # the batch length counts the bytes after this
_COMPRESSION = 0x07
_TIMESTAMP_TYPE = 0x08
_TRANSACTIONAL = 0x10
_CONTROL = 0x20
#: compression attribute -> its name (the ones this server reads: none and gzip)
CODECS = {0: "none", 1: "gzip"}


class BatchError(Exception):
    """A batch this server refuses; ``code`` is Kafka's error code for it."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ProducedBatch:
    """The records of one produced batch, as the log takes them, and the idempotent
    producer's id, epoch and first sequence number (-1 when not idempotent)."""

    records: list[OutgoingRecord]
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
        records = list(_read_records(body, count, first_ts, partition))
        yield ProducedBatch(records, bool(attributes & _CONTROL),
                            bool(attributes & _TRANSACTIONAL), producer_id,
                            producer_epoch, sequence)
        pos = end


def _decompress(codec: int, body: bytes) -> bytes:
    if codec == 0:
        return body
    if codec == 1:
        inflater = zlib.decompressobj(wbits=47)         # a gzip (or zlib) header
        try:
            data = inflater.decompress(body, MAX_INFLATED)
        except zlib.error as exc:
            raise BatchError(CORRUPT_MESSAGE, f"gzip records: {exc}") from None
        if inflater.unconsumed_tail:
            raise BatchError(MESSAGE_TOO_LARGE,
                             f"gzip records inflate past {MAX_INFLATED} bytes")
        return data
    raise BatchError(UNSUPPORTED_COMPRESSION_TYPE,
                     f"compression {codec} is not read by this broker (none and gzip are)")


def _read_records(body: bytes, count: int, first_ts: int, partition: int
                  ) -> Iterator[OutgoingRecord]:
    reader = _Reader(body)
    try:
        for _ in range(count):
            length = reader.varint()
            end = reader.pos + length
            reader.pos += 1                           # attributes: unused
            delta = reader.varint()
            # -1 is Kafka's "no timestamp": the log stamps the record when it writes it
            timestamp = first_ts + delta if first_ts >= 0 else None
            reader.varint()                           # offset delta: the log assigns
            key = reader.bytes_or_none()
            value = reader.bytes_or_none()
            headers = []
            for _h in range(reader.varint()):
                name = reader.bytes_or_none()
                headers.append(((name or b"").decode("utf-8", "replace"),
                                reader.bytes_or_none()))
            if reader.pos != end:
                raise BatchError(CORRUPT_MESSAGE, "record length does not match")
            yield OutgoingRecord(key, value, headers, timestamp, partition)
    except (IndexError, ValueError) as exc:
        raise BatchError(CORRUPT_MESSAGE, f"record cut short: {exc}") from None
    if reader.pos != len(body):
        raise BatchError(CORRUPT_MESSAGE, "bytes after the batch's last record")


class _Reader:
    """Kafka's zigzag varints and varint-sized byte strings, from ``data``."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varint(self) -> int:
        shift = result = 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (result >> 1) ^ -(result & 1)
            shift += 7
            if shift > 63:
                raise ValueError("varint longer than 10 bytes")

    def bytes_or_none(self) -> bytes | None:
        size = self.varint()
        if size < 0:
            return None
        if self.pos + size > len(self.data):
            raise ValueError("string past the record")
        value = self.data[self.pos:self.pos + size]
        self.pos += size
        return value


def _varint(value: int, out: bytearray) -> None:
    value = (value << 1) ^ (value >> 63)               # zigzag
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _sized(value: bytes | None, out: bytearray) -> None:
    if value is None:
        _varint(-1, out)
    else:
        _varint(len(value), out)
        out += value


def encode_record(message: Message, base_offset: int, base_ts: int) -> bytes:
    """One record of a batch whose first offset and timestamp are given."""
    body = bytearray(b"\0")                            # attributes
    _varint(message.timestamp - base_ts, body)
    _varint(message.offset - base_offset, body)
    _sized(message.key, body)
    _sized(message.value, body)
    headers = message.headers or []
    _varint(len(headers), body)
    for name, value in headers:
        _sized(name.encode(), body)
        _sized(value, body)
    out = bytearray()
    _varint(len(body), out)
    return bytes(out + body)


def encode_batch(messages: Sequence[Message], max_bytes: int) -> tuple[bytes, int]:
    """One uncompressed batch of ``messages`` (all of one timestamp type) from the
    first, as many as fit in ``max_bytes`` but at least one: (the batch, how many)."""
    first = messages[0]
    base_offset, base_ts = first.offset, first.timestamp
    records = bytearray()
    used = 0
    max_ts = base_ts
    for message in messages:
        record = encode_record(message, base_offset, base_ts)
        if used and _HEADER.size + len(records) + len(record) > max_bytes:
            break
        records += record
        max_ts = max(max_ts, message.timestamp)
        used += 1
    last = messages[used - 1]
    attributes = _TIMESTAMP_TYPE if first.timestamp_type == LOG_APPEND_TIME else 0
    header = _HEADER.pack(base_offset, _HEADER.size - _LENGTH_FROM + len(records), 0, 2, 0,
                          attributes, last.offset - base_offset, base_ts, max_ts, -1, -1,
                          -1, used)
    batch = bytearray(header) + records
    struct.pack_into(">I", batch, 17, crc32c.crc32c(bytes(batch[_CRC_FROM:])))
    return bytes(batch), used


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
