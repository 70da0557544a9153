"""Plain value types shared by every layer: messages, partitions, metadata.

This module imports nothing from streamkit, so every layer may import it.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import Any, NamedTuple, overload

#: Kafka record headers: (name, value) pairs; a value may be null.
Headers = list[tuple[str, bytes | None]]

#: ``Message.timestamp_type`` values, as in Kafka.
CREATE_TIME = 0
LOG_APPEND_TIME = 1


class TopicPartition(NamedTuple):
    """One partition of one topic."""

    topic: str
    partition: int


class RecordMetadata(NamedTuple):
    """Where a produced record landed (returned once the broker acknowledged it)."""

    topic: str
    partition: int
    offset: int
    timestamp: int


class Message:
    """One record read from a topic partition.

    ``timestamp`` is milliseconds since the epoch; ``timestamp_type`` is
    ``CREATE_TIME`` (the producer's) or ``LOG_APPEND_TIME`` (the broker's).
    """

    __slots__ = ("topic", "partition", "offset", "timestamp", "timestamp_type",
                 "key", "value", "_headers")
    _FIELDS = tuple(name.lstrip("_") for name in __slots__)  # headers via its property
    #: the headers as the log hands them over (a tuple of pairs, or None) until read
    _headers: Headers | Sequence[tuple[str, bytes | None]] | None

    def __init__(self, topic: str, partition: int, offset: int, timestamp: int,
                 timestamp_type: int, key: bytes | None, value: bytes | None,
                 headers: Headers) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.timestamp_type = timestamp_type
        self.key = key
        self.value = value
        self.headers = headers

    @property
    def headers(self) -> Headers:
        """``(key, value)`` pairs, as a list made on first read: the log hands over
        a tuple, or nothing, and most messages are never asked for their headers."""
        headers = self._headers
        if type(headers) is not list:
            headers = self._headers = list(headers) if headers else []
        return headers

    @headers.setter
    def headers(self, headers: Headers) -> None:
        self._headers = headers

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def __repr__(self) -> str:
        return (f"<Message {self.topic}[{self.partition}]@{self.offset} "
                f"ts={self.timestamp} key={self.key!r} value={self.value!r:.60}>")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._FIELDS)

    # unhashable, as it defines __eq__ (mypy types __hash__ as a method)
    __hash__ = None  # type: ignore[assignment]


class OutgoingRecord(NamedTuple):
    """A record handed to ``Broker.produce``: key and value already in bytes.

    ``partition=None`` lets the broker choose (Kafka's default partitioner for keyed
    records, spread for unkeyed ones); ``timestamp=None`` means "now"; ``headers``
    None or empty: none.
    """

    key: bytes | None
    value: bytes | None
    headers: Headers | None = []
    timestamp: int | None = None
    partition: int | None = None


class PartitionRecords(Sequence[OutgoingRecord]):
    """Records bound for one partition, given as columns: keys and values, and
    optionally their timestamps (None: each stamped when written) and headers (None:
    none). Any broker reads it as ``OutgoingRecord``s; the embedded log appends the
    columns as they are. A table's commit writes one changelog record per changed key,
    and a Kafka client's produced batch many records, and building, placing and
    acknowledging a tuple per record cost more than writing it."""

    __slots__ = ("keys", "values", "partition", "timestamps", "headers")

    def __init__(self, keys: Sequence[bytes | None], values: Sequence[bytes | None],
                 partition: int, timestamps: Sequence[int] | None = None,
                 headers: Sequence[Headers | None] | None = None) -> None:
        if len(keys) != len(values):
            raise ValueError(f"{len(keys)} keys but {len(values)} values")
        for name, column in (("timestamps", timestamps), ("headers", headers)):
            if column is not None and len(column) != len(keys):
                raise ValueError(f"{len(keys)} keys but {len(column)} {name}")
        self.keys = keys
        self.values = values
        self.partition = partition
        self.timestamps = timestamps
        self.headers = headers

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, index: int) -> OutgoingRecord: ...
    @overload
    def __getitem__(self, index: slice) -> list[OutgoingRecord]: ...

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return list(self)[index]
        return OutgoingRecord(
            self.keys[index], self.values[index],
            None if self.headers is None else self.headers[index],
            None if self.timestamps is None else self.timestamps[index], self.partition)

    def __iter__(self) -> Iterator[OutgoingRecord]:
        return map(OutgoingRecord, self.keys, self.values,
                   repeat(None) if self.headers is None else self.headers,
                   repeat(None) if self.timestamps is None else self.timestamps,
                   repeat(self.partition))


class AppendedRecords(Sequence[RecordMetadata]):
    """The metadata of records appended to one partition in a row, from offset
    ``first`` on, built when asked for (what ``produce`` returns for
    ``PartitionRecords`` on the embedded log)."""

    __slots__ = ("topic", "partition", "first", "timestamps")

    def __init__(self, topic: str, partition: int, first: int,
                 timestamps: Sequence[int]) -> None:
        self.topic = topic
        self.partition = partition
        self.first = first
        self.timestamps = timestamps

    def __len__(self) -> int:
        return len(self.timestamps)

    @overload
    def __getitem__(self, index: int) -> RecordMetadata: ...
    @overload
    def __getitem__(self, index: slice) -> list[RecordMetadata]: ...

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        count = len(self.timestamps)
        if not -count <= index < count:
            raise IndexError("record index out of range")
        index %= count
        return RecordMetadata(self.topic, self.partition, self.first + index,
                              self.timestamps[index])


class TopicInfo(NamedTuple):
    """What ``Broker.describe_topic`` reports."""

    name: str
    partitions: int
    config: dict[str, str]
    start_offsets: list[int]     # first offset still in the log, per partition
    end_offsets: list[int]       # the offset the next record will get, per partition


class GroupOffset(NamedTuple):
    """A committed offset of a consumer group and how far it lags the log end."""

    topic: str
    partition: int
    committed: int | None
    end_offset: int

    @property
    def lag(self) -> int:
        return self.end_offset - (self.committed or 0)


class OffsetAndTimestamp(NamedTuple):
    """``Consumer.offsets_for_times``' answer for one partition: the first offset whose
    record's timestamp is at or after the one asked for, and that timestamp."""

    offset: int
    timestamp: int


class OffsetAndMetadata(NamedTuple):
    """A committed offset (the next one to read) with its metadata string, as
    ``Consumer.commit_async`` hands it to its callback."""

    offset: int
    metadata: str
