"""Synchronous Producer, Consumer and Admin clients in the style of kafka-python.

They work over any broker URL (``log://``, ``memory://``, ``kafka://``) or an open
``Broker``, and use only the Broker protocol, so a script ported from kafka-python
changes one line::

    producer = streamkit.Producer(broker="log://", value_serializer=json_bytes)
    producer.send("demo_1", value={"a": 1}, key=b"k").get(timeout=10)

The Producer lives in ``streamkit.producer`` (its linger timer thread: decision 110),
the Consumer in ``streamkit.consumer``; the Consumer and Admin have no thread. See
docs/clients.md.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from streamkit.consumer import Consumer
from streamkit.producer import FutureRecordMetadata, Producer
from streamkit.transport import connect
from streamkit.transport.base import Broker
from streamkit.transport.options import choose_broker
from streamkit.types import (GroupOffset, OffsetAndMetadata, OffsetAndTimestamp,
                             OutgoingRecord, RecordMetadata, TopicInfo)

log = logging.getLogger("streamkit.clients")

__all__ = ["Admin", "Consumer", "FutureRecordMetadata", "OffsetAndMetadata",
           "OffsetAndTimestamp", "Producer"]


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


class Admin:
    """Topics and groups: create, describe, delete, clean up, offsets and lag."""

    def __init__(self, broker: str | Broker | None = None, *,
                 bootstrap_servers: str | Sequence[str] | None = None,
                 datadir: str | Path = "stores", default_partitions: int = 1,
                 config: dict[str, Any] | None = None) -> None:
        """Open ``broker`` (``log://`` by default), or ``kafka://<bootstrap_servers>``
        as the Producer and Consumer do (decision 130)."""
        target = choose_broker("Admin", broker, bootstrap_servers)
        self._broker, self._owned = _open(target, datadir, default_partitions, config)

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
