"""The consumer protocol's member metadata and assignments (protocol type "consumer").

A consumer group's JoinGroup carries each member's subscription as opaque bytes
(Kafka's ``ConsumerProtocolSubscription``) and SyncGroup carries the assignment
(``ConsumerProtocolAssignment``). The broker reads the subscribed topics, so that
``log://`` members see what a Kafka member reads, and writes assignments where the
group's ``log://`` members decide them (decision 911). Versions 0-3 share the fields
read here: a version, then the topics (and, for assignments, their partitions).
"""
from __future__ import annotations

import struct
from collections.abc import Iterable

from streamkit.types import TopicPartition

__all__ = ["ProtocolError", "decode_assignment", "decode_subscription",
           "encode_assignment", "encode_subscription"]

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
#: the version written: every client reads 0, and 1-3 add nothing an assignment needs
ASSIGNMENT_VERSION = 0


class ProtocolError(ValueError):
    """Member metadata or an assignment that is not the consumer protocol's."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, fmt: struct.Struct) -> int:
        if self.pos + fmt.size > len(self.data):
            raise ProtocolError(f"cut short at byte {self.pos}")
        (value,) = fmt.unpack_from(self.data, self.pos)
        self.pos += fmt.size
        return int(value)

    def int16(self) -> int:
        return self._take(_I16)

    def int32(self) -> int:
        return self._take(_I32)

    def string(self) -> str:
        size = self.int16()
        if size < 0 or self.pos + size > len(self.data):
            raise ProtocolError(f"bad string length {size} at byte {self.pos - 2}")
        text = self.data[self.pos:self.pos + size].decode("utf-8", "replace")
        self.pos += size
        return text

    def count(self) -> int:
        size = self.int32()
        if size < 0 or size > len(self.data):
            raise ProtocolError(f"bad array length {size} at byte {self.pos - 4}")
        return size


def _string(text: str) -> bytes:
    data = text.encode()
    return _I16.pack(len(data)) + data


def decode_subscription(metadata: bytes) -> list[str]:
    """The topics a member's ``ConsumerProtocolSubscription`` subscribes to."""
    reader = _Reader(metadata)
    if reader.int16() < 0:
        raise ProtocolError("negative subscription version")
    return [reader.string() for _ in range(reader.count())]


def encode_subscription(topics: Iterable[str]) -> bytes:
    """A version 0 ``ConsumerProtocolSubscription`` of ``topics`` (no user data)."""
    names = list(topics)
    return (_I16.pack(0) + _I32.pack(len(names)) + b"".join(_string(t) for t in names)
            + _I32.pack(-1))


def decode_assignment(assignment: bytes) -> list[TopicPartition]:
    """The partitions of a ``ConsumerProtocolAssignment`` (empty bytes: none)."""
    if not assignment:
        return []
    reader = _Reader(assignment)
    if reader.int16() < 0:
        raise ProtocolError("negative assignment version")
    out = []
    for _ in range(reader.count()):
        topic = reader.string()
        out += [TopicPartition(topic, reader.int32()) for _ in range(reader.count())]
    return out


def encode_assignment(tps: Iterable[TopicPartition]) -> bytes:
    """A ``ConsumerProtocolAssignment`` of ``tps`` (no user data)."""
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(tps):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    out = [_I16.pack(ASSIGNMENT_VERSION), _I32.pack(len(by_topic))]
    for topic, partitions in by_topic.items():
        out += [_string(topic), _I32.pack(len(partitions))]
        out += [_I32.pack(p) for p in partitions]
    out.append(_I32.pack(-1))
    return b"".join(out)
