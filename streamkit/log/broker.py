"""``LogBroker``: the Broker protocol over the embedded log, on disk or in memory.

``open_log_broker`` maps URLs to storages:

- ``log://``           -> ``<datadir>/log``
- ``log://rel/path``   -> ``rel/path`` (relative to the working directory)
- ``log:///abs/path``  -> ``/abs/path``
- ``memory://``, ``memory://name`` -> one in-memory storage per name in this process;
  every broker opened with the same URL sees the same topics, records and groups.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from streamkit.errors import (BrokerError, InvalidBrokerURL, InvalidConfig,
                              OffsetOutOfRange, TopicExists, UnknownTopic)
from streamkit.log import groupstore
from streamkit.log.config import (TopicConfig, check_replication_factor,
                                  check_topic_config, check_topic_name)
from streamkit.log.groups import LogGroupConsumer, RebalanceCallback
from streamkit.log.partition import Partition
from streamkit.log.partitioner import KeyPartitioner
from streamkit.log.storage import FileStorage, MemoryStorage
from streamkit.types import (GroupOffset, Message, OutgoingRecord, RecordMetadata,
                             TopicInfo, TopicPartition)

_MEMORY: dict[str, MemoryStorage] = {}
_MEMORY_LOCK = threading.Lock()


class UnknownPartition(UnknownTopic):
    """A partition number the topic does not have."""


class _Topic:
    __slots__ = ("name", "partitions", "config", "identity", "logs")

    def __init__(self, name: str, partitions: int, config: TopicConfig,
                 identity: object, logs: list[Partition]) -> None:
        self.name = name
        self.partitions = partitions
        self.config = config
        self.identity = identity
        self.logs = logs


class LogBroker:
    """The embedded log (``log://`` or ``memory://``) as a ``Broker``."""

    def __init__(self, url: str, storage: FileStorage | MemoryStorage,
                 default_partitions: int = 1,
                 default_config: dict[str, str] | None = None) -> None:
        if default_partitions < 1:
            raise InvalidConfig(f"default_partitions={default_partitions} must be >= 1")
        self.url = url
        self.default_partitions = default_partitions
        self._storage = storage
        self._default_config = default_config or {}
        self._topics: dict[str, _Topic] = {}
        self._partitioner = KeyPartitioner()
        self._spread = random.randrange(1 << 16)
        self._groups: list[LogGroupConsumer] = []

    # -- topics ------------------------------------------------------------------------
    def create_topic(self, name: str, partitions: int | None = None,
                     config: dict[str, str] | None = None,
                     replication_factor: int = 1, exist_ok: bool = True) -> None:
        check_topic_name(name)
        check_replication_factor(replication_factor)
        checked = check_topic_config({**self._default_config, **(config or {})})
        count = self.default_partitions if partitions is None else int(partitions)
        if count < 1:
            raise InvalidConfig(f"topic {name!r}: partitions={partitions} must be >= 1")
        if self._storage.read_topic(name) is not None:
            if exist_ok:
                return
            raise TopicExists(f"topic {name!r} already exists")
        try:
            self._storage.create_topic(name, count, checked)
        except TopicExists:
            if not exist_ok:
                raise

    def delete_topic(self, name: str) -> None:
        check_topic_name(name)
        self._forget(name)
        self._storage.delete_topic(name)

    def list_topics(self) -> list[str]:
        return self._storage.list_topics()

    def describe_topic(self, name: str) -> TopicInfo:
        topic = self._topic(name)
        offsets = [log.offsets() for log in topic.logs]
        return TopicInfo(name, topic.partitions, topic.config.full(),
                         [s for s, _ in offsets], [e for _, e in offsets])

    def partition_count(self, name: str) -> int | None:
        try:
            return self._topic(name).partitions
        except UnknownTopic:
            return None

    def cleanup(self, name: str) -> None:
        for log in self._topic(name).logs:
            log.cleanup(force=True)

    def _forget(self, name: str) -> None:
        topic = self._topics.pop(name, None)
        if topic is not None:
            for log in topic.logs:
                log.close()
                log.store.close()

    def _topic(self, name: str, create: bool = False) -> _Topic:
        """The cached topic, re-read if it was deleted or recreated meanwhile."""
        topic = self._topics.get(name)
        if topic is not None:
            if self._storage.topic_identity(name) == topic.identity:
                return topic
            self._forget(name)
        check_topic_name(name)
        meta = self._storage.read_topic(name)
        if meta is None:
            if not create:
                raise UnknownTopic(f"topic {name!r} does not exist")
            self.create_topic(name)
            meta = self._storage.read_topic(name)
            if meta is None:
                raise UnknownTopic(f"topic {name!r} was deleted while being created")
        partitions, raw, identity = meta
        config = TopicConfig(raw)
        logs = [Partition(name, p, self._storage.partition_store(name, p), config)
                for p in range(partitions)]
        topic = self._topics[name] = _Topic(name, partitions, config, identity, logs)
        return topic

    def _partition(self, tp: TopicPartition) -> Partition:
        topic = self._topic(tp.topic)
        if not 0 <= tp.partition < topic.partitions:
            raise UnknownPartition(f"topic {tp.topic!r} has no partition {tp.partition} "
                                   f"(it has {topic.partitions})")
        return topic.logs[tp.partition]

    # -- produce -------------------------------------------------------------------------
    def produce(self, topic: str, records: Sequence[OutgoingRecord],
                acks: Literal[0, 1, "all"] = 1) -> list[RecordMetadata]:
        if acks not in (0, 1, "all", -1):
            raise InvalidConfig(f"acks={acks!r}: use 0, 1 or 'all'")
        if not records:
            return []
        state = self._topic(topic, create=True)
        count = state.partitions
        by_partition: dict[int, list[int]] = {}
        partitioner = self._partitioner
        for i, record in enumerate(records):
            p = record[4]
            if p is None:
                key = record[0]
                if key is not None:
                    if isinstance(key, str):
                        key = key.encode()
                    p = partitioner(key, count)
                else:
                    p = self._spread % count
                    self._spread += 1
            elif not 0 <= p < count:
                raise UnknownPartition(f"topic {topic!r} has no partition {p} (it has "
                                       f"{count})")
            group = by_partition.get(p)
            if group is None:
                by_partition[p] = [i]
            else:
                group.append(i)
        out: list[Any] = [None] * len(records)
        marks = []
        for p, indexes in by_partition.items():
            log = state.logs[p]
            rows = [records[i] for i in indexes]
            first, stamps, mark = log.append(rows)
            marks.append((log, mark))
            if acks == 0:
                for i, ts in zip(indexes, stamps):
                    out[i] = RecordMetadata(topic, p, -1, ts)
            else:
                for n, (i, ts) in enumerate(zip(indexes, stamps)):
                    out[i] = RecordMetadata(topic, p, first + n, ts)
        if acks in ("all", -1):
            for log, mark in marks:
                log.fsync(mark)
        return out

    # -- fetch ---------------------------------------------------------------------------
    def fetch(self, tp: TopicPartition, offset: int, max_records: int = 1000,
              timeout: float = 0.0) -> list[Message]:
        log = self._partition(tp)
        messages = log.read(offset, max_records)
        if messages:
            return messages
        if offset > log.end_offset():
            raise OffsetOutOfRange(f"{tp.topic}[{tp.partition}]: offset {offset} is past "
                                   f"the end offset {log.end_offset()}")
        if timeout <= 0:
            return messages
        deadline = time.monotonic() + timeout
        backoff = 0.001
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            time.sleep(min(backoff, remaining))
            backoff = min(backoff * 2, 0.02)
            messages = log.read(offset, max_records)
            if messages:
                return messages

    def offsets(self, tp: TopicPartition) -> tuple[int, int]:
        return self._partition(tp).offsets()

    # -- groups --------------------------------------------------------------------------
    def _group_store(self, group_id: str):
        groupstore.group_dir_name(group_id)        # refuses an empty or non-str id
        if isinstance(self._storage, MemoryStorage):
            with self._storage.lock:
                group = self._storage.groups.setdefault(group_id, groupstore.MemoryGroup())
            return groupstore.MemoryGroupStore(group)
        self._storage.ensure_root()
        return groupstore.FileGroupStore(self._storage.groups_root, group_id)

    def group_consumer(self, group_id: str, topics: Sequence[str], *,
                       auto_offset_reset: Literal["earliest", "latest"] = "earliest",
                       enable_auto_commit: bool = False,
                       auto_commit_interval: float = 5.0,
                       session_timeout: float = 10.0,
                       on_assign: RebalanceCallback | None = None,
                       on_revoke: RebalanceCallback | None = None) -> LogGroupConsumer:
        for topic in topics:
            check_topic_name(topic)
        member = LogGroupConsumer(
            self, self._group_store(group_id), group_id, topics,
            auto_offset_reset=auto_offset_reset, enable_auto_commit=enable_auto_commit,
            auto_commit_interval=auto_commit_interval, session_timeout=session_timeout,
            on_assign=on_assign, on_revoke=on_revoke)
        self._groups.append(member)
        return member

    def list_groups(self) -> list[str]:
        if isinstance(self._storage, MemoryStorage):
            return sorted(self._storage.groups)
        return groupstore.file_list_groups(self._storage.groups_root)

    def group_offsets(self, group_id: str) -> list[GroupOffset]:
        if group_id not in self.list_groups():
            return []
        store = self._group_store(group_id)
        try:
            committed = store.read_offsets()
        finally:
            store.close()
        out = []
        for tp, offset in sorted(committed.items()):
            try:
                end = self.offsets(tp)[1]
            except UnknownTopic:
                continue
            out.append(GroupOffset(tp.topic, tp.partition, offset, end))
        return out

    def delete_group(self, group_id: str) -> None:
        if group_id not in self.list_groups():
            return
        store = self._group_store(group_id)
        try:
            with store.locked():
                state = store.read_state()
                alive = [m for m in state["members"] if store.is_alive(m, 1e9)]
                if alive:
                    raise BrokerError(f"group {group_id!r} still has {len(alive)} live "
                                      f"member(s): {', '.join(sorted(alive))}")
                if isinstance(self._storage, MemoryStorage):
                    self._storage.groups.pop(group_id, None)
                else:
                    groupstore.file_delete_group(self._storage.groups_root, group_id)
        finally:
            store.close()

    def close(self) -> None:
        for member in self._groups:
            member.close()
        self._groups.clear()
        for name in list(self._topics):
            self._forget(name)

    def __enter__(self) -> LogBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _log_root(url: str, datadir: str | Path) -> Path:
    rest = url.partition("://")[2]
    if not rest:
        return Path(datadir) / "log"
    return Path(rest)


def open_log_broker(url: str, *, datadir: str | Path = "stores",
                    default_partitions: int = 1,
                    config: dict[str, Any] | None = None) -> LogBroker:
    """Open the embedded log named by ``url`` (``log://...`` or ``memory://...``).

    ``config`` may hold topic configs (``retention.ms``, ``segment.bytes``, ...) used as
    defaults for topics this broker creates; other keys (e.g. librdkafka settings meant
    for kafka://) are ignored.
    """
    scheme, sep, rest = url.partition("://")
    defaults = {k: str(v) for k, v in (config or {}).items()
                if k in ("retention.ms", "retention.bytes", "segment.bytes",
                         "cleanup.policy", "message.timestamp.type")}
    defaults = check_topic_config(defaults)
    if scheme == "memory" and sep:
        with _MEMORY_LOCK:
            storage = _MEMORY.setdefault(rest, MemoryStorage())
        return LogBroker(url, storage, default_partitions, defaults)
    if scheme == "log" and sep:
        storage = FileStorage(_log_root(url, datadir))
        storage.ensure_root()
        return LogBroker(url, storage, default_partitions, defaults)
    raise InvalidBrokerURL(f"broker URL {url!r} is not log://[path] or memory://[name]")
