"""``LogBroker``: the Broker protocol over the embedded log, on disk or in memory.

``open_log_broker`` maps URLs to storages:

- ``log://``           -> ``<datadir>/log``
- ``log://rel/path``   -> ``rel/path`` (relative to the working directory)
- ``log:///abs/path``  -> ``/abs/path``
- ``memory://``, ``memory://name`` -> one in-memory storage per name in this process;
  every broker opened with the same URL sees the same topics, records and groups.
"""
from __future__ import annotations

import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal, cast

from streamkit.errors import (BrokerError, InvalidBrokerURL, InvalidConfig,
                              OffsetOutOfRange, TopicExists, UnknownTopic)
from streamkit.log import groupstore
from streamkit.log.config import (TopicConfig, check_replication_factor,
                                  check_topic_config, check_topic_name)
from streamkit.log.groups import LogGroupConsumer, RebalanceCallback
from streamkit.log.groupstore import GroupStore
from streamkit.log.partition import FsyncMark, Partition
from streamkit.partitioner import KeyPartitioner
from streamkit.log.memory import MemoryStorage
from streamkit.log.storage import FileStorage
from streamkit.log.transactional import LogTransaction
from streamkit.log.transactions import (DEFAULT_TIMEOUT_MS, FileTxnStore, MemoryTxnStore,
                                        TransactionCoordinator)
from streamkit.log.txnindex import NONE_OPEN, Producer
from streamkit.log.watch import AppendWatch, open_append_watch
from streamkit.types import (AppendedRecords, GroupOffset, Message, OffsetAndTimestamp,
                             OutgoingRecord, PartitionRecords, RecordMetadata, TopicInfo,
                             TopicPartition)

logger = logging.getLogger("streamkit.log")

#: acks=0 records a broker holds before writing them.
UNACKED_LIMIT = 10_000

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
        self._key_cache: dict[int, dict[bytes, int]] = {}
        self._unacked: list[tuple[Partition, list[OutgoingRecord]]] = []
        self._unacked_count = 0
        self._spread = random.randrange(1 << 16)
        self._groups: weakref.WeakSet[LogGroupConsumer] = weakref.WeakSet()
        #: what ``fetch`` with a timeout waits on (set up by its first wait)
        self._fetch_watch: AppendWatch | None = None
        self._coordinator: TransactionCoordinator | None = None
        #: when a read_committed fetch last asked the coordinator to expire
        #: transactions (``monotonic``)
        self._expired_at = 0.0

    # -- topics ------------------------------------------------------------------------
    def create_topic(self, name: str, partitions: int | None = None,
                     config: dict[str, str] | None = None,
                     replication_factor: int = 1, exist_ok: bool = True) -> None:
        if self._unacked:
            self._drain()
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
        if self._unacked:
            self._drain()
        check_topic_name(name)
        self._forget(name)
        self._storage.delete_topic(name)

    def list_topics(self) -> list[str]:
        if self._unacked:
            self._drain()
        return self._storage.list_topics()

    def orphan_topics(self) -> list[str]:
        """Topics whose partitions hold records but whose topic.json is lost
        (``streamkit log repair`` rebuilds it). Not part of the Broker protocol."""
        return self._storage.orphan_topics()

    def alter_topic_config(self, name: str, config: Mapping[str, object],
                           delete: Sequence[str] = ()) -> None:
        """Set topic configs of ``name`` (merged into its config; as Kafka's
        incremental alter), and remove those named in ``delete`` (back to the log's
        defaults). Not part of the Broker protocol."""
        if self._unacked:
            self._drain()
        check_topic_name(name)

        def change(raw: dict[str, str]) -> dict[str, str]:
            kept = {k: v for k, v in raw.items() if k not in delete}
            return check_topic_config({**kept, **config})

        self._storage.alter_config(name, change)
        self._forget(name)

    def topic_config(self, name: str) -> dict[str, str]:
        """The configs set on ``name`` (at its creation or since), without the log's
        defaults that ``describe_topic`` fills in. Raises ``UnknownTopic``."""
        if self._unacked:
            self._drain()
        return dict(self._topic(name).config.raw)

    def create_partitions(self, name: str, count: int) -> None:
        """Grow ``name`` to ``count`` partitions (Kafka's ``create_partitions``). The
        new partitions start empty; the records of the others stay where they are, so
        a key may go to another partition from now on, as in Kafka. Raises
        ``UnknownTopic``, or ``InvalidConfig`` unless ``count`` is more than it has
        (partitions are never removed)."""
        if self._unacked:
            self._drain()
        check_topic_name(name)
        added_to = self._storage.add_partitions(name, int(count))
        self._forget(name)
        logger.info("topic %r: %d partitions, was %d", name, count, added_to)

    def describe_topic(self, name: str) -> TopicInfo:
        if self._unacked:
            self._drain()
        topic = self._topic(name)
        offsets = [log.offsets() for log in topic.logs]
        return TopicInfo(name, topic.partitions, topic.config.full(),
                         [s for s, _ in offsets], [e for _, e in offsets])

    def partition_count(self, name: str) -> int | None:
        if self._unacked:
            self._drain()
        try:
            return self._topic(name).partitions
        except UnknownTopic:
            return None

    def cleanup(self, name: str) -> None:
        if self._unacked:
            self._drain()
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
                acks: Literal[0, 1, "all"] = 1) -> Sequence[RecordMetadata]:
        """Append records. ``acks=0`` only queues them in this broker (offset -1 in the
        metadata, as Kafka); they are written once ``UNACKED_LIMIT`` records wait, or
        at the next call of any other method of this broker, or on ``close``.
        ``PartitionRecords`` are appended as the columns they are."""
        if acks not in (0, 1, "all", -1):
            raise InvalidConfig(f"acks={acks!r}: use 0, 1 or 'all'")
        if not records:
            return []
        if type(records) is PartitionRecords and acks != 0:
            return self._append_to_partition(topic, records, acks)
        state = self._topic(topic, create=True)
        groups, indexes = self._place(state, records)
        out: list[RecordMetadata | None] = [None] * len(records)
        new = tuple.__new__
        if acks == 0:
            now = time.time_ns() // 1_000_000
            lat = state.config.log_append_time
            for p, rows in enumerate(groups):
                if rows:
                    self._unacked.append((state.logs[p], rows))
                    self._unacked_count += len(rows)
                    for i, r in zip(indexes[p], rows, strict=True):
                        ts = now if lat or r[3] is None else r[3]
                        out[i] = new(RecordMetadata, (topic, p, -1, ts))
            if self._unacked_count >= UNACKED_LIMIT:
                self._drain()
            return cast(list[RecordMetadata], out)     # every record is in one group
        if self._unacked:
            self._drain()
        written, marks = self._append_groups(state, groups, indexes, len(records), None)
        if acks in ("all", -1):
            for log, mark in marks:
                log.fsync(mark)
        return written

    def _append_groups(self, state: _Topic, groups: list[list[OutgoingRecord]],
                       indexes: list[list[int]], count: int, producer: Producer | None
                       ) -> tuple[list[RecordMetadata], list[tuple[Partition, FsyncMark]]]:
        """Append each partition's records (``_place``'s groups; with ``producer``,
        inside its transaction): the metadata of the ``count`` records in the order
        they were given, and each partition's fsync mark."""
        out: list[RecordMetadata | None] = [None] * count
        new = tuple.__new__
        marks = []
        for p, rows in enumerate(groups):
            if not rows:
                continue
            log = state.logs[p]
            offset, stamps, mark = log.append(rows, producer)
            marks.append((log, mark))
            for i, ts in zip(indexes[p], stamps, strict=True):
                out[i] = new(RecordMetadata, (state.name, p, offset, ts))
                offset += 1
        return cast(list[RecordMetadata], out), marks   # every record is in one group

    def _append_to_partition(self, topic: str, records: PartitionRecords,
                             acks: Literal[1, "all", -1]) -> Sequence[RecordMetadata]:
        """``produce`` of columns bound for one partition: appended as they are."""
        state = self._topic(topic, create=True)
        partition = records.partition
        if not 0 <= partition < state.partitions:
            raise _unknown_partition(state.name, partition, state.partitions)
        if self._unacked:
            self._drain()
        log = state.logs[partition]
        offset, stamps, mark = log.append_columns(records.keys, records.values,
                                                  records.timestamps, records.headers)
        if acks != 1:
            log.fsync(mark)
        return AppendedRecords(topic, partition, offset, stamps)

    def sync(self, tps: Iterable[TopicPartition]) -> None:
        """Make the records produced with ``acks=1`` to ``tps`` so far durable, as
        ``acks="all"`` would have (not part of the Broker protocol: the Kafka-protocol
        server answers several ``acks=all`` requests with one fsync per partition)."""
        for tp in tps:
            try:
                partition = self._partition(tp)
            except UnknownTopic:
                continue                    # deleted since: its records are gone too
            partition.sync()

    def flush(self) -> None:
        """Write the records produced with acks=0 now (not part of the Broker
        protocol; ``streamkit.Producer.flush`` calls it when a broker has it)."""
        if self._unacked:
            self._drain()

    def _place(self, state: _Topic, records: Sequence[OutgoingRecord]
               ) -> tuple[list[list[OutgoingRecord]], list[list[int]]]:
        """Records and their indexes per partition: explicit partition, else Kafka's
        partitioner for keyed records, else round robin."""
        count = state.partitions
        cache = self._key_cache.get(count)
        if cache is None or len(cache) > 65536:
            cache = self._key_cache[count] = {}
        groups: list[list[OutgoingRecord]] = [[] for _ in range(count)]
        indexes: list[list[int]] = [[] for _ in range(count)]
        for i, record in enumerate(records):
            p = record[4]
            if p is None:
                key = record[0]
                if key is None:
                    p = self._spread % count
                    self._spread += 1
                else:
                    p = cache.get(key)
                    if p is None:
                        p = cache[key] = self._partitioner(
                            key.encode() if isinstance(key, str) else key, count)
            elif not 0 <= p < count:
                raise _unknown_partition(state.name, p, count)
            groups[p].append(record)
            indexes[p].append(i)
        return groups, indexes

    def _drain(self) -> None:
        """Write the records produced with acks=0, per partition in order."""
        pending, self._unacked = self._unacked, []
        self._unacked_count = 0
        merged: dict[int, tuple[Partition, list[OutgoingRecord]]] = {}
        for log, rows in pending:
            entry = merged.get(id(log))
            if entry is None:
                merged[id(log)] = (log, list(rows))
            else:
                entry[1].extend(rows)
        for log, rows in merged.values():
            try:
                log.append(rows)
            except UnknownTopic:
                logger.warning("dropped %d acks=0 records of %s[%d]: topic deleted",
                               len(rows), log.topic, log.partition)

    # -- fetch ---------------------------------------------------------------------------
    def fetch(self, tp: TopicPartition, offset: int, max_records: int = 1000,
              timeout: float = 0.0, isolation_level: str = "read_uncommitted"
              ) -> list[Message]:
        if self._unacked:
            self._drain()
        log = self._partition(tp)
        if isolation_level == "read_committed":
            def read(offset: int, max_records: int) -> list[Message]:
                return self._read_committed(log, offset, max_records)
        elif isolation_level == "read_uncommitted":
            read = log.read
        else:
            raise InvalidConfig(f"isolation_level={isolation_level!r}: use "
                                "'read_uncommitted' or 'read_committed'")
        messages = read(offset, max_records)
        if messages:
            return messages
        if offset > log.end_offset():
            raise OffsetOutOfRange(f"{tp.topic}[{tp.partition}]: offset {offset} is past "
                                   f"the end offset {log.end_offset()}")
        if timeout <= 0:
            return messages
        # wait for an append (decision 111): clear the watch, read, then wait, so an
        # append between the read and the wait still wakes this one
        deadline = time.monotonic() + timeout
        watch = self._fetch_watch
        if watch is None:
            watch = self._fetch_watch = self.append_watch()
        while True:
            if watch.watch((tp,)):
                messages = read(offset, max_records)    # appended before the watch
                if messages:
                    return messages
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            # (a read_committed reader held back by an open transaction wakes at
            # least every second, to expire it if its producer is gone)
            watch.wait(min(remaining, 1.0) if read is not log.read else remaining)
            watch.clear()
            messages = read(offset, max_records)
            if messages:
                return messages

    def _read_committed(self, log: Partition, offset: int, max_records: int
                        ) -> list[Message]:
        """What a read_committed reader gets: no record of an aborted or open
        transaction, nothing past the last stable offset. A reader held back by an
        open transaction asks the coordinator (at most once a second) to abort it if
        it is past its timeout."""
        view = log.committed_view()
        messages = log.read(offset, max_records, view)
        if not messages and view.stable != NONE_OPEN and \
                time.monotonic() - self._expired_at >= 1.0:
            self._expired_at = time.monotonic()
            if self.transactions().expire():
                return log.read(offset, max_records, log.committed_view())
        return messages

    # -- transactions ------------------------------------------------------------------
    def settle_transactions(self) -> None:
        """Finish the commits and aborts left prepared by producers that died, and
        abort the transactions open past their timeout (``expire``)."""
        self.transactions().expire()

    def transactions(self) -> TransactionCoordinator:
        """The coordinator of this log's transactions."""
        if self._coordinator is None:
            if isinstance(self._storage, MemoryStorage):
                with self._storage.lock:
                    if self._storage.txn_store is None:
                        self._storage.txn_store = MemoryTxnStore()
                    store: FileTxnStore | MemoryTxnStore = self._storage.txn_store
            else:
                store = FileTxnStore(self._storage.root)
            self._coordinator = TransactionCoordinator(store, self._partition,
                                                       self._group_store)
        return self._coordinator

    def last_stable_offset(self, tp: TopicPartition) -> int:
        """The partition's last stable offset: the first offset of its oldest open
        transaction, or its end offset when none is open (what a read_committed reader
        may read up to, as Kafka's Fetch reports it)."""
        log = self._partition(tp)
        return min(log.committed_view().stable, log.end_offset())

    def transactional_producer(self, transactional_id: str,
                               timeout_ms: int = DEFAULT_TIMEOUT_MS) -> LogTransaction:
        """A transactional producer for ``transactional_id`` (its previous holder is
        fenced, a transaction it left open aborted)."""
        return LogTransaction(self, transactional_id, timeout_ms)

    def produce_transactional(self, topic: str, records: Sequence[OutgoingRecord],
                              producer: Producer, enlist: Callable[
                                  [list[TopicPartition]], None]) -> list[RecordMetadata]:
        """Append ``records`` inside ``producer``'s open transaction; ``enlist`` is
        told the partitions first (the coordinator must know every partition a
        transaction wrote to before it does). Durable at the commit."""
        if self._unacked:
            self._drain()
        state = self._topic(topic, create=True)
        groups, indexes = self._place(state, records)
        enlist([TopicPartition(topic, p) for p, rows in enumerate(groups) if rows])
        return self._append_groups(state, groups, indexes, len(records), producer)[0]

    def append_watch(self) -> AppendWatch:
        """A new watch that wakes its owner when records are appended to the
        partitions it is told to watch, by any process (``streamkit.log.watch``).
        The caller closes it."""
        return open_append_watch(self._storage)

    def offsets(self, tp: TopicPartition) -> tuple[int, int]:
        if self._unacked:
            self._drain()
        return self._partition(tp).offsets()

    def offset_for_time(self, tp: TopicPartition, timestamp: int
                        ) -> OffsetAndTimestamp | None:
        """The first record (in offset order) whose timestamp is at or after
        ``timestamp``, as Kafka's ListOffsets by time; None if there is none. The log
        keeps no time index: this reads the partition from its start up to the answer
        (timestamps need not grow with offsets, so no part can be skipped unread)."""
        if self._unacked:
            self._drain()
        log = self._partition(tp)
        offset = log.start_offset()
        while True:
            messages = log.read(offset, 1000)
            if not messages:
                return None
            for message in messages:
                if message.timestamp >= timestamp:
                    return OffsetAndTimestamp(message.offset, message.timestamp)
            offset = messages[-1].offset + 1

    # -- groups --------------------------------------------------------------------------
    def _group_store(self, group_id: str) -> GroupStore:
        groupstore.group_dir_name(group_id)        # refuses an empty or non-str id
        if isinstance(self._storage, MemoryStorage):
            with self._storage.lock:
                group = self._storage.groups.setdefault(group_id, groupstore.MemoryGroup())
            return groupstore.MemoryGroupStore(group)
        self._storage.ensure_root()
        return groupstore.FileGroupStore(self._storage.groups_root, group_id)

    def group_store(self, group_id: str) -> GroupStore:
        """A new handle on ``group_id``'s state (created if missing), for a coordinator
        that keeps members of the group in this log's store (``streamkit broker``'s,
        decision 911). The caller closes it."""
        return self._group_store(group_id)

    def group_consumer(self, group_id: str, topics: Sequence[str], *,
                       auto_offset_reset: Literal["earliest", "latest"] = "earliest",
                       enable_auto_commit: bool = False,
                       auto_commit_interval: float = 5.0,
                       session_timeout: float = 10.0,
                       on_assign: RebalanceCallback | None = None,
                       on_revoke: RebalanceCallback | None = None,
                       copartitioned: bool = False,
                       isolation_level: str = "read_uncommitted",
                       on_lost: RebalanceCallback | None = None) -> LogGroupConsumer:
        # ``copartitioned`` needs nothing here: groups of the log always use the range
        # assignor and take the partitions of one number together (groups.py).
        if self._unacked:
            self._drain()
        for topic in topics:
            check_topic_name(topic)
        member = LogGroupConsumer(
            self, self._group_store(group_id), group_id, topics,
            auto_offset_reset=auto_offset_reset, enable_auto_commit=enable_auto_commit,
            auto_commit_interval=auto_commit_interval, session_timeout=session_timeout,
            on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost,
            isolation_level=isolation_level)
        self._groups.add(member)
        return member

    def list_groups(self) -> list[str]:
        if self._unacked:
            self._drain()
        if isinstance(self._storage, MemoryStorage):
            return sorted(self._storage.groups)
        return groupstore.file_list_groups(self._storage.groups_root)

    def group_offsets(self, group_id: str) -> list[GroupOffset]:
        if self._unacked:
            self._drain()
        if group_id not in self.list_groups():
            return []
        if isinstance(self._storage, MemoryStorage):
            store = self._group_store(group_id)
            try:
                committed = store.read_offsets()
            finally:
                store.close()
        else:
            # (no group store: it creates the group's lock file, and a read-only log
            # must be listable)
            committed = groupstore.file_read_offsets(self._storage.groups_root, group_id)
        out = []
        for tp, offset in sorted(committed.items()):
            try:
                end = self.offsets(tp)[1]
            except UnknownTopic:
                continue
            out.append(GroupOffset(tp.topic, tp.partition, offset, end))
        return out

    def commit_offsets(self, group_id: str, offsets: dict[TopicPartition, int]) -> None:
        """Store committed offsets of ``group_id`` without being a member of it (a
        consumer with manually assigned partitions), merged into what it has."""
        store = self._group_store(group_id)
        try:
            store.write_offsets(dict(offsets))
        finally:
            store.close()

    def delete_group(self, group_id: str) -> None:
        if self._unacked:
            self._drain()
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
        if self._unacked:
            self._drain()
        if self._fetch_watch is not None:
            self._fetch_watch.close()
            self._fetch_watch = None
        for member in list(self._groups):
            member.close()
        self._groups.clear()
        for name in list(self._topics):
            self._forget(name)

    def __enter__(self) -> LogBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def reset_memory(name: str | None = None) -> None:
    """Forget the data of ``memory://name`` (every memory:// log if ``name`` is None),
    e.g. between tests. Brokers already open keep the data they hold."""
    with _MEMORY_LOCK:
        if name is None:
            _MEMORY.clear()
        else:
            _MEMORY.pop(name, None)


def log_root(url: str, datadir: str | Path) -> Path:
    """The directory a ``log://`` URL names (``<datadir>/log`` for a bare ``log://``)."""
    rest = url.partition("://")[2]
    if not rest:
        return Path(datadir) / "log"
    return Path(rest)


def open_log_broker(url: str, *, datadir: str | Path = "stores",
                    default_partitions: int = 1,
                    config: Mapping[str, object] | None = None) -> LogBroker:
    """Open the embedded log named by ``url`` (``log://...`` or ``memory://...``).

    ``config`` may hold topic configs (``retention.ms``, ``segment.bytes``, ...) used as
    defaults for topics this broker creates; other keys (e.g. librdkafka settings meant
    for kafka://) are ignored.
    """
    scheme, sep, rest = url.partition("://")
    defaults = {k: str(v) for k, v in (config or {}).items()
                if k in ("retention.ms", "retention.bytes", "segment.bytes", "segment.ms",
                         "cleanup.policy", "message.timestamp.type",
                         "min.cleanable.dirty.ratio")}
    defaults = check_topic_config(defaults)
    if scheme == "memory" and sep:
        with _MEMORY_LOCK:
            memory = _MEMORY.setdefault(rest, MemoryStorage())
        return LogBroker(url, memory, default_partitions, defaults)
    if scheme == "log" and sep:
        files = FileStorage(log_root(url, datadir))
        files.ensure_root()
        return LogBroker(url, files, default_partitions, defaults)
    raise InvalidBrokerURL(f"broker URL {url!r} is not log://[path] or memory://[name]")


def _unknown_partition(topic: str, partition: int, count: int) -> UnknownPartition:
    return UnknownPartition(f"topic {topic!r} has no partition {partition} (it has "
                            f"{count})")
