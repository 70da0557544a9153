"""Synchronous Producer, Consumer and Admin clients in the style of kafka-python.

They work over any broker URL (``log://``, ``memory://``, ``kafka://``) or an open
``Broker``, and use only the Broker protocol, so a script ported from kafka-python
changes one line::

    producer = streamkit.Producer(broker="log://", value_serializer=json_bytes)
    producer.send("demo_1", value={"a": 1}, key=b"k").get(timeout=10)

The Producer lives in ``streamkit.producer`` (its linger timer thread: decision 110);
the Consumer and Admin have no thread. See docs/clients.md.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from streamkit.errors import CorruptRecord, DecodeError, InvalidConfig
from streamkit.producer import FutureRecordMetadata, Producer
from streamkit.transport import connect
from streamkit.log.watch import AppendWatch
from streamkit.transport.base import Broker, GroupConsumer, WatchedBroker
from streamkit.types import (GroupOffset, Message, OutgoingRecord, RecordMetadata,
                             TopicInfo, TopicPartition)

log = logging.getLogger("streamkit.clients")

#: The user's function from bytes to their values (any value type they like).
Deserializer = Callable[[bytes], Any]

__all__ = ["Admin", "Consumer", "FutureRecordMetadata", "Producer"]


def _open(broker: str | Broker, datadir: str | Path, default_partitions: int,
          config: dict[str, Any] | None = None) -> tuple[Broker, bool]:
    """(broker, owned): open a URL, or use a Broker object the caller keeps."""
    if isinstance(broker, str):
        return connect(broker, datadir=datadir, default_partitions=default_partitions,
                       config=config), True
    return broker, False


class Pending(Protocol):
    """What waits for a buffered record's metadata."""

    def resolve(self, metadata: RecordMetadata) -> None:
        """The record was written: here is where."""
        ...

    def fail(self, error: BaseException) -> None:
        """The record could not be written."""
        ...


Taken = list[tuple[str, list[OutgoingRecord], list["Pending | None"]]]


class RecordBuffer:
    """Records waiting to be written, per topic, each with what waits for its metadata
    (or None): a ``Producer``'s and an app's sends alike, written by their owner in one
    ``produce`` call per topic (``take``)."""

    def __init__(self) -> None:
        self._records: dict[str, list[OutgoingRecord]] = {}
        self._waiting: dict[str, list[Pending | None]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, topic: str, record: OutgoingRecord, pending: Pending | None) -> None:
        """Queue one record."""
        records = self._records.get(topic)
        if records is None:
            records = self._records[topic] = []
            self._waiting[topic] = []
        records.append(record)
        self._waiting[topic].append(pending)
        self._count += 1

    def extend(self, topic: str, records: list[OutgoingRecord]) -> None:
        """Queue many records nothing waits for."""
        batch = self._records.get(topic)
        if batch is None:
            batch = self._records[topic] = []
            self._waiting[topic] = []
        batch.extend(records)
        self._waiting[topic].extend([None] * len(records))
        self._count += len(records)

    def take(self) -> Taken:
        """Every buffered (topic, records, what waits for them), emptying the buffer."""
        taken = [(topic, records, self._waiting[topic])
                 for topic, records in self._records.items()]
        self._records, self._waiting, self._count = {}, {}, 0
        return taken

    def put_back(self, taken: Taken) -> None:
        """After a failed write: ``taken`` goes back in front of what was queued
        meanwhile, so nothing is lost and each topic keeps its order."""
        for topic, records, waiting in taken:
            self._records[topic] = records + self._records.get(topic, [])
            self._waiting[topic] = waiting + self._waiting.get(topic, [])
            self._count += len(records)


def write_each(taken: Taken, produce: Callable[[str, list[OutgoingRecord]],
                                               Sequence[RecordMetadata]]) -> None:
    """Write what ``RecordBuffer.take`` gave, one ``produce`` call per topic, and hand
    each record's metadata to what waits for it."""
    for topic, records, waiting in taken:
        for pending, metadata in zip(waiting, produce(topic, records), strict=True):
            if pending is not None:
                pending.resolve(metadata)


class _AllPartitions:
    """Reads every partition of some topics with no group (no commits)."""

    def __init__(self, broker: Broker, topics: list[str], reset: str) -> None:
        self._broker = broker
        self._positions: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        #: woken by appends where the broker can tell (decision 111), else a back-off;
        #: set up at the first wait
        self._watched = broker if isinstance(broker, WatchedBroker) else None
        self._watch: AppendWatch | None = None
        for topic in topics:
            broker.create_topic(topic, exist_ok=True)
            for p in range(broker.partition_count(topic) or 0):
                tp = TopicPartition(topic, p)
                start, end = broker.offsets(tp)
                self._positions[tp] = start if reset == "earliest" else end

    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    def poll(self, max_records: int, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        backoff = 0.001
        while True:
            out = self._read(max_records)
            remaining = deadline - time.monotonic()
            if out or remaining <= 0:
                return out
            watch = self._watch
            if watch is None and self._watched is not None:
                watch = self._watch = self._watched.append_watch()
            if watch is None:
                time.sleep(min(backoff, remaining))
                backoff = min(backoff * 2, 0.02)
                continue
            # the watch is cleared before each read after a wait: an append that ends
            # between the read and the wait still wakes this one
            if not watch.watch([tp for tp in self._positions if tp not in self._paused]):
                watch.wait(remaining)
            watch.clear()

    def _read(self, max_records: int) -> list[Message]:
        out: list[Message] = []
        damage: CorruptRecord | None = None
        for tp, position in self._positions.items():
            if tp in self._paused:
                continue
            try:
                messages = self._broker.fetch(tp, position, max_records - len(out))
            except CorruptRecord as exc:
                damage = damage or exc   # the others first; raised once they are dry
                continue
            if messages:
                self._positions[tp] = messages[-1].offset + 1
                out.extend(messages)
                if len(out) >= max_records:
                    break
        if damage is not None and not out:
            raise damage
        return out

    def position(self, tp: TopicPartition) -> int:
        return self._positions[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self._positions:
            raise KeyError(f"{tp.topic}[{tp.partition}] is not assigned")
        self._positions[tp] = offset

    def pause(self, tps: Iterable[TopicPartition]) -> None:
        self._paused.update(tps)

    def resume(self, tps: Iterable[TopicPartition]) -> None:
        self._paused.difference_update(tps)

    def committed(self, tp: TopicPartition) -> int | None:
        return None

    def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        raise InvalidConfig("commit needs a Consumer with a group_id")

    def close(self, commit: bool = True) -> None:
        if self._watch is not None:
            self._watch.close()


class Consumer:
    """Reads topics, as one member of ``group_id`` or (without one) all partitions.

    Iterating yields messages (``.topic .partition .offset .key .value .timestamp
    .headers``) until ``consumer_timeout_ms`` passes with none (forever by default).
    """

    def __init__(self, *topics: str, broker: str | Broker = "log://",
                 group_id: str | None = None, auto_offset_reset: str = "latest",
                 enable_auto_commit: bool = True, auto_commit_interval_ms: float = 5000,
                 value_deserializer: Deserializer | None = None,
                 key_deserializer: Deserializer | None = None,
                 consumer_timeout_ms: float | None = None,
                 session_timeout_ms: float = 10000, max_poll_records: int = 500,
                 datadir: str | Path = "stores", default_partitions: int = 1,
                 config: dict[str, Any] | None = None) -> None:
        if auto_offset_reset not in ("earliest", "latest"):
            raise InvalidConfig(f"Consumer auto_offset_reset={auto_offset_reset!r}: use "
                                "earliest or latest")
        if not topics:
            raise InvalidConfig("Consumer needs at least one topic")
        self.group_id = group_id
        self._topics = list(topics)
        self._value_deserializer = value_deserializer
        self._key_deserializer = key_deserializer
        self._timeout = None if consumer_timeout_ms is None else consumer_timeout_ms / 1000
        self._max_poll_records = max_poll_records
        self._broker, self._owned = _open(broker, datadir, default_partitions, config)
        self._buffer: list[Message] = []
        self._iter_buffer: list[Message] = []
        self._closed = False
        self._member: GroupConsumer | _AllPartitions
        if group_id is None:
            self._member = _AllPartitions(self._broker, self._topics, auto_offset_reset)
        else:
            # auto commit is done here, not by the group member: the member's
            # positions run ahead of what the iterator has handed out
            reset: Literal["earliest", "latest"] = \
                "earliest" if auto_offset_reset == "earliest" else "latest"
            self._member = self._broker.group_consumer(
                group_id, self._topics, auto_offset_reset=reset,
                enable_auto_commit=False, session_timeout=session_timeout_ms / 1000)
        self._auto_commit_every = (auto_commit_interval_ms / 1000
                                   if enable_auto_commit and group_id is not None else None)
        self._next_auto_commit = time.monotonic() + (self._auto_commit_every or 0)

    # -- reading -----------------------------------------------------------------------
    def poll(self, timeout_ms: float = 0, max_records: int | None = None
             ) -> dict[TopicPartition, list[Message]]:
        """Messages by partition, waiting up to ``timeout_ms`` for the first."""
        limit = max_records or self._max_poll_records
        messages = self._next_batch(limit, timeout_ms / 1000)
        out: dict[TopicPartition, list[Message]] = {}
        for message in messages:
            out.setdefault(TopicPartition(message.topic, message.partition),
                           []).append(message)
        return out

    def _next_batch(self, limit: int, timeout: float) -> list[Message]:
        if self._auto_commit_every is not None and time.monotonic() >= self._next_auto_commit:
            self._next_auto_commit = time.monotonic() + self._auto_commit_every
            self.commit()   # what was handed out so far, nothing still buffered
        if self._buffer:
            batch, self._buffer = self._buffer[:limit], self._buffer[limit:]
            return batch
        raw = self._member.poll(limit, timeout)
        return self._decode(raw)

    def _decode(self, raw: list[Message]) -> list[Message]:
        kd, vd = self._key_deserializer, self._value_deserializer
        if kd is None and vd is None:
            return raw
        for i, message in enumerate(raw):
            try:
                if kd is not None and message.key is not None:
                    message.key = kd(message.key)
                if vd is not None and message.value is not None:
                    message.value = vd(message.value)
            except Exception as exc:
                self._rewind_after_failure(raw, i)
                raise DecodeError(
                    f"cannot deserialize {message.topic}[{message.partition}]@"
                    f"{message.offset}: {exc!r} (the message is skipped)") from exc
        return raw

    def _rewind_after_failure(self, raw: list[Message], bad: int) -> None:
        """Keep the good messages before ``bad`` for the next poll, skip ``bad``, and
        seek back so the messages after it are fetched again."""
        self._buffer = raw[:bad]
        rewind: dict[TopicPartition, int] = {}
        failed = raw[bad]
        for message in raw[bad + 1:]:
            rewind.setdefault(message.tp, message.offset)
        rewind.setdefault(failed.tp, failed.offset + 1)
        for tp, offset in rewind.items():
            self._member.seek(tp, offset)

    def __iter__(self) -> Iterator[Message]:
        return self

    def __next__(self) -> Message:
        if not self._iter_buffer:
            timeout = self._timeout
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._iter_buffer:
                wait = 1.0 if deadline is None else max(deadline - time.monotonic(), 0)
                self._iter_buffer = self._next_batch(self._max_poll_records, wait)
                if self._iter_buffer:
                    self._iter_buffer.reverse()
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    raise StopIteration
        return self._iter_buffer.pop()

    # -- positions and commits ---------------------------------------------------------
    def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        """Commit ``offsets`` (next offsets to read), or the current positions."""
        if self.group_id is None:
            raise InvalidConfig("commit needs a Consumer with a group_id")
        if offsets is None and (self._iter_buffer or self._buffer):
            # messages fetched but not yet handed out (by the iterator, or kept back
            # after a decode error) are not committed
            offsets = {tp: self._member.position(tp) for tp in self._member.assignment()}
            for message in self._iter_buffer + self._buffer:
                offsets[message.tp] = min(offsets.get(message.tp, message.offset),
                                          message.offset)
        self._member.commit(offsets)

    def committed(self, tp: TopicPartition) -> int | None:
        return self._member.committed(tp)

    def assignment(self) -> set[TopicPartition]:
        return self._member.assignment()

    def subscription(self) -> set[str]:
        return set(self._topics)

    def topics(self) -> set[str]:
        return set(self._broker.list_topics())

    def partitions_for_topic(self, topic: str) -> set[int]:
        count = self._broker.partition_count(topic)
        return set(range(count)) if count else set()

    def position(self, tp: TopicPartition) -> int:
        return self._member.position(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._iter_buffer = [m for m in self._iter_buffer if m.tp != tp]
        self._buffer = [m for m in self._buffer if m.tp != tp]
        self._member.seek(tp, offset)

    def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps or sorted(self.assignment()):
            self.seek(tp, self._broker.offsets(tp)[0])

    def seek_to_end(self, *tps: TopicPartition) -> None:
        for tp in tps or sorted(self.assignment()):
            self.seek(tp, self._broker.offsets(tp)[1])

    def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._broker.offsets(tp)[1] for tp in tps}

    def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._broker.offsets(tp)[0] for tp in tps}

    def pause(self, *tps: TopicPartition) -> None:
        self._member.pause(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self._member.resume(tps)

    def close(self, autocommit: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        undelivered = bool(self._iter_buffer or self._buffer)
        if self.group_id is not None and autocommit and undelivered:
            self.commit()
        self._member.close(commit=autocommit and not undelivered)
        if self._owned:
            self._broker.close()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Admin:
    """Topics and groups: create, describe, delete, clean up, offsets and lag."""

    def __init__(self, broker: str | Broker = "log://", *, datadir: str | Path = "stores",
                 default_partitions: int = 1, config: dict[str, Any] | None = None) -> None:
        self._broker, self._owned = _open(broker, datadir, default_partitions, config)

    def create_topic(self, name: str, partitions: int | None = None,
                     config: dict[str, Any] | None = None, replication_factor: int = 1,
                     exist_ok: bool = False) -> None:
        """Create a topic; raises TopicExists unless ``exist_ok``."""
        self._broker.create_topic(name, partitions,
                                  {k: str(v) for k, v in (config or {}).items()},
                                  replication_factor=replication_factor, exist_ok=exist_ok)

    def delete_topic(self, name: str) -> None:
        self._broker.delete_topic(name)

    def list_topics(self) -> list[str]:
        return self._broker.list_topics()

    def describe_topic(self, name: str) -> TopicInfo:
        """Partitions, config, start and end offsets per partition."""
        return self._broker.describe_topic(name)

    def cleanup(self, name: str) -> None:
        """Run retention and compaction on ``name`` now."""
        self._broker.cleanup(name)

    def list_groups(self) -> list[str]:
        return self._broker.list_groups()

    def group_offsets(self, group_id: str) -> list[GroupOffset]:
        """Committed offset, end offset and ``.lag`` of each partition of the group."""
        return self._broker.group_offsets(group_id)

    def delete_group(self, group_id: str) -> None:
        self._broker.delete_group(group_id)

    def close(self) -> None:
        if self._owned:
            self._broker.close()

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
