"""``Table``: a dict-like view over a store, partitioned like the stream updating it.

A key lives in the partition of the event being processed when it is written (after
``group_by`` that is the partition owning the key). Reads and writes go to an
in-memory cache per partition; changed keys are written out at each commit, in one
changelog batch per partition (``<app id>-<name>-changelog``, compacted; see
``streamkit.names`` for names over 249 characters) and then in one
store batch that also records the changelog offset reached. On start (and when a
partition is assigned) a table replays only the changelog past that offset.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import anyio

from streamkit.errors import ImproperlyConfigured
from streamkit.names import CHANGELOG, derived_topic_name
from streamkit.partitioner import partition_for_key
from streamkit.serializers import Serde
from streamkit.streams.event import current_stream
from streamkit.tables.context import TableContext
from streamkit.types import OutgoingRecord, TopicPartition

if TYPE_CHECKING:
    from streamkit.tables.windowed import WindowWrapper

logger = logging.getLogger("streamkit.tables")

_DELETED: Any = object()
_ABSENT: Any = object()
#: how many changelog records a restore reads per fetch
RESTORE_BATCH = 10_000


class Table:
    """See the module docstring and DESIGN.md."""

    is_global = False

    def __init__(self, name: str, *, context: TableContext,
                 default: Callable[[], Any] | None = None,
                 key_type: Any = None, value_type: Any = None,
                 partitions: int | None = None, help: str | None = None,
                 on_window_close: Callable[[Any, Any], Any] | None = None,
                 key_serializer: str | None = None, value_serializer: str | None = None,
                 store: str | None = None) -> None:
        if default is not None and not callable(default):
            raise ImproperlyConfigured(
                f"table {name!r}: default={default!r} must be callable (like int or list)")
        self.context = context
        self.name = name
        self.default = default
        self.key_type = key_type
        self.value_type = value_type
        self.partitions = partitions
        self.help = help or ""
        self.on_window_close = on_window_close
        self.store_url = store or context.store_url
        # derived here: a name unfit for a topic fails where the table is declared
        self.changelog_topic = derived_topic_name(context.app_id, name, CHANGELOG,
                                                  what="table")
        self.key_serde = Serde(key_type, key_serializer or "json")
        self.value_serde = Serde(value_type, value_serializer or "json")
        self.window: WindowWrapper | None = None
        #: one store per partition (RocksDB files are per partition, as in Faust, so
        #: workers of one app on one machine each open only the partitions they own)
        self._stores: dict[int, Any] = {}
        self._cache: dict[int, dict[Any, Any]] = {}
        self._dirty: dict[int, set[Any]] = {}
        #: the batch the agent last read or wrote in, with its partition's cache and
        #: dirty set: the per-event fast paths skip the partition lookups
        self._hot_batch: Any = None
        self._hot_cache: dict[Any, Any] = {}
        self._hot_dirty: set[Any] = set()
        self._active: set[int] = set()
        self._extra_changes: dict[int, list[tuple[bytes, bytes | None]]] = {}
        self._warned_partitions: set[int] = set()
        #: changes written to the changelog, not yet to the stores (``apply_flushed``)
        self._pending_store: list[tuple[int, list[tuple[bytes, bytes | None]], Any]] = []

    def __repr__(self) -> str:
        return f"<Table {self.name}>"

    # -- windowing ---------------------------------------------------------------------
    def tumbling(self, size: Any, expires: Any = None, grace: Any = 0) -> WindowWrapper:
        """Tumbling windows of ``size`` (seconds or timedelta), ``[start, end)``."""
        from streamkit.windows import TumblingWindow
        return self._windowed(TumblingWindow(size, expires=expires, grace=grace))

    def hopping(self, size: Any, step: Any, expires: Any = None, grace: Any = 0
                ) -> WindowWrapper:
        """Hopping windows of ``size`` every ``step``."""
        from streamkit.windows import HoppingWindow
        return self._windowed(HoppingWindow(size, step, expires=expires, grace=grace))

    def sliding(self, size: Any, grace: Any = 0, expires: Any = None) -> WindowWrapper:
        """Kafka Streams' sliding windows (both ends inclusive). ``expires``: how long
        after closing a window is kept (default: kept)."""
        from streamkit.windows import SlidingWindow
        return self._windowed(SlidingWindow(size, grace=grace), expires)

    def session(self, gap: Any, grace: Any = 0, expires: Any = None) -> WindowWrapper:
        """Session windows: records within ``gap`` of each other share a session.
        ``expires``: how long after closing a session is kept (default: kept)."""
        from streamkit.windows import SessionWindow
        return self._windowed(SessionWindow(gap, grace=grace), expires)

    def _windowed(self, window: Any, expires_after_close: Any = None) -> WindowWrapper:
        from streamkit.tables.windowed import WindowWrapper
        from streamkit.windows import want_seconds
        self.window = WindowWrapper(self, window)
        if expires_after_close is not None:
            self.window.expires_after_close = want_seconds(expires_after_close)
        return self.window

    # -- which partition -----------------------------------------------------------------
    def _partition(self) -> int | None:
        stream = current_stream.get()
        if stream is not None:
            batch = stream.batch
            if batch is not None:
                return batch.tp.partition
        return None

    def _partition_of_key(self, key: Any) -> int:
        return partition_for_key(self._dump_key(key), self.partition_count())

    def _dump_key(self, key: Any) -> bytes:
        """The bytes of ``key`` in the changelog and the store."""
        raw = self.key_serde.dumps(key)
        if raw is None:
            raise ImproperlyConfigured(f"table {self.name}: None cannot be a key (the "
                                       "changelog would keep no record of it)")
        return raw

    def partition_count(self) -> int:
        return self.partitions or self.context.default_partitions

    def _cache_of(self, partition: int) -> dict[Any, Any]:
        cache = self._cache.get(partition)
        if cache is None:
            cache = self._cache[partition] = {}
            self._dirty[partition] = set()
        return cache

    # -- reading -----------------------------------------------------------------------
    def _lookup(self, partition: int, key: Any) -> Any:
        cache = self._cache.get(partition)
        if cache is None:
            if self._given_up(partition):
                return _DELETED   # not this worker's: no cache for it (see _write_at)
            cache = self._cache_of(partition)
        value = cache.get(key, _ABSENT)
        if value is _ABSENT:
            store = self._stores.get(partition)
            raw = store.get(partition, self.key_serde.dumps(key)) if store else None
            value = _DELETED if raw is None else self.value_serde.loads(raw)
            cache[key] = value
        return value

    def _find(self, key: Any) -> Any:
        partition = self._partition()
        if partition is None:
            partition = self._partition_holding(key)
            if partition is None:
                return _DELETED
        return self._lookup(partition, key)

    def _partition_holding(self, key: Any) -> int | None:
        """Outside an event: the partition this worker holds ``key`` in, if any."""
        for partition in self._readable_partitions():
            if self._lookup(partition, key) is not _DELETED:
                return partition
        return None

    def _hot(self, batch: Any) -> dict[Any, Any] | None:
        """The cache of ``batch``'s partition, remembered for the batch's next events
        (None while the partition has no cache yet)."""
        partition = batch.tp.partition
        cache = self._cache.get(partition)
        if cache is not None:
            self._hot_batch = batch
            self._hot_cache = cache
            self._hot_dirty = self._dirty[partition]
        return cache

    def _given_up(self, partition: int) -> bool:
        """Whether this worker does not own ``partition`` (any more): a write there,
        from an event in hand when its partition was revoked, is dropped; the
        partition's new owner processes that event again."""
        if self.is_global or partition in self._active or not self.context.owning():
            return False
        if partition not in self._warned_partitions:
            self._warned_partitions.add(partition)
            if partition >= self.partition_count():
                logger.error("table %s has %d partitions: writes from events of partition "
                             "%d are dropped; give the table partitions= like the topic "
                             "that updates it", self.name, self.partition_count(), partition)
            else:
                logger.warning("table %s: partition %d is not this worker's (revoked); "
                               "its writes here are dropped", self.name, partition)
        return True

    def _forget_hot(self) -> None:
        """Called wherever partition caches are dropped or replaced."""
        self._hot_batch = None
        self._hot_cache = {}
        self._hot_dirty = set()

    def __getitem__(self, key: Any) -> Any:
        # fast path, once per event: the key is cached in the event's partition
        stream = current_stream.get()
        if stream is not None:
            batch = stream.batch
            if batch is not None:
                cache = self._hot_cache if batch is self._hot_batch else self._hot(batch)
                if cache is not None:
                    value = cache.get(key, _ABSENT)
                    if value is not _ABSENT and value is not _DELETED:
                        return value
        value = self._find(key)
        if value is _DELETED:
            if self.default is None:
                raise KeyError(key)
            return self.default()
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._find(key)
        return default if value is _DELETED else value

    def peek(self, key: Any, default: Any = None) -> Any:
        """Like ``get``, for readers outside the agents (web views): a miss is not
        remembered in the cache."""
        for partition in self._readable_partitions():
            cache = self._cache.get(partition)
            value = cache.get(key, _ABSENT) if cache is not None else _ABSENT
            if value is _ABSENT:
                store = self._stores.get(partition)
                raw = store.get(partition, self.key_serde.dumps(key)) if store else None
                if raw is not None:
                    return self.value_serde.loads(raw)
            elif value is not _DELETED:
                return value
        return default

    def stores(self) -> dict[int, Any]:
        """partition -> the store this worker has open for it."""
        return dict(self._stores)

    def __contains__(self, key: Any) -> bool:
        return self._find(key) is not _DELETED

    def _readable_partitions(self) -> list[int]:
        known = set(self._cache) | self._active
        known.update(self._stores)
        return sorted(known)

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Every (key, value) the worker holds, across its partitions."""
        for partition in self._readable_partitions():
            yield from self._partition_items(partition)

    def _partition_items(self, partition: int) -> Iterator[tuple[Any, Any]]:
        cache = self._cache_of(partition)
        seen: set[Any] = set()
        for key, value in list(cache.items()):
            seen.add(key)
            if value is not _DELETED:
                yield key, value
        store = self._stores.get(partition)
        if store is not None:
            for raw_key, raw_value in store.items(partition):
                if raw_key[:1] == b"\x00":
                    continue  # streamkit's own bookkeeping (window watermark)
                key = _hashable(self.key_serde.loads(raw_key))
                if key not in seen:
                    yield key, self.value_serde.loads(raw_value)

    def keys(self) -> Iterator[Any]:
        return (k for k, _ in self.items())

    def values(self) -> Iterator[Any]:
        return (v for _, v in self.items())

    def __iter__(self) -> Iterator[Any]:
        return self.keys()

    def __len__(self) -> int:
        return sum(1 for _ in self.items())

    def as_dict(self) -> dict[Any, Any]:
        return dict(self.items())

    # -- writing -------------------------------------------------------------------------
    def _write(self, key: Any, value: Any) -> None:
        partition = self._partition()
        if partition is None:
            # outside an event (a timer, a take(within=) list): where the key already
            # is, else where it hashes to
            partition = self._partition_holding(key)
            if partition is None:
                partition = self._partition_of_key(key)
        self._write_at(partition, key, value)

    def _write_at(self, partition: int, key: Any, value: Any) -> None:
        cache = self._cache.get(partition)
        if cache is None:
            if self._given_up(partition):
                return
            cache = self._cache_of(partition)
        cache[key] = value
        self._dirty[partition].add(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        stream = current_stream.get()
        if stream is not None:
            batch = stream.batch
            if batch is not None:
                if batch is self._hot_batch:
                    self._hot_cache[key] = value
                    self._hot_dirty.add(key)
                    return
                if self._hot(batch) is not None:
                    self._hot_cache[key] = value
                    self._hot_dirty.add(key)
                    return
        self._write(key, value)

    def __delitem__(self, key: Any) -> None:
        if key not in self:
            raise KeyError(key)
        self._write(key, _DELETED)

    def pop(self, key: Any, *default: Any) -> Any:
        value = self.get(key, _ABSENT)
        if value is _ABSENT:
            if default:
                return default[0]
            raise KeyError(key)
        self._write(key, _DELETED)
        return value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        value = self.get(key, _ABSENT)
        if value is _ABSENT:
            self._write(key, default)
            return default
        return value

    def update(self, other: Any = (), **kwargs: Any) -> None:
        items = other.items() if hasattr(other, "items") else other
        for key, value in items:
            self._write(key, value)
        for key, value in kwargs.items():
            self._write(key, value)

    def clear(self) -> None:
        for key in list(self.keys()):
            self._write(key, _DELETED)

    # -- lifecycle (called by the worker) -----------------------------------------------
    def open(self, source_partitions: int = 0) -> None:
        """Create the changelog topic (worker start); stores open per partition.

        Without ``partitions=``, a table gets as many partitions as its changelog
        already has, else as the most partitioned topic the app consumes (at least
        ``topic_partitions``)."""
        broker = self.context.broker()
        if self.partitions is None:
            existing = broker.partition_count(self.changelog_topic)
            self.partitions = existing or max(source_partitions,
                                              self.context.default_partitions)
        broker.create_topic(self.changelog_topic, partitions=self.partition_count(),
                            config={"cleanup.policy": "compact"}, exist_ok=True)
        if self.is_global:
            self.on_partitions_assigned([TopicPartition(self.changelog_topic, p)
                                         for p in range(self.partition_count())])

    def _store_of(self, partition: int) -> Any:
        """The store of one partition, opened on first use."""
        store = self._stores.get(partition)
        if store is None:
            url = "memory://" if self.is_global else self.store_url
            store = self._stores[partition] = self.context.open_store(
                url, f"{self.name}-{partition}")
        return store

    def _close_store(self, partition: int) -> None:
        store = self._stores.pop(partition, None)
        if store is not None:
            store.close()

    def bind(self, context: TableContext) -> None:
        """Work in ``context`` from now on (``agent.test_context()`` binds the tables
        to its own, then back): stores, caches and windows start afresh."""
        self.close()
        self.context = context
        self._pending_store.clear()
        if self.window is not None:
            self.window.reset()

    def close(self) -> None:
        for partition in list(self._stores):
            self._close_store(partition)
        self._cache.clear()
        self._dirty.clear()
        self._forget_hot()
        self._active.clear()

    async def run_background(self) -> None:
        """Window closing for windowed tables; following the changelog for global ones."""
        if self.window is not None:
            await self.window.run_background()

    # -- flushing ------------------------------------------------------------------------
    def flush(self) -> None:
        """Write changed keys to the changelog (one batch per partition); the stores
        take them at ``apply_flushed``, once the changelog records are committed."""
        if self.window is not None:
            self.window.before_flush()
        for partition, dirty in self._dirty.items():
            if dirty or partition in self._extra_changes:
                self._flush_partition(partition, dirty)
                dirty.clear()
        for partition in list(self._extra_changes):
            self._flush_partition(partition, set())

    def _flush_partition(self, partition: int, keys: set[Any]) -> None:
        cache = self._cache_of(partition)
        dump_key, dump_value = self._dump_key, self.value_serde.dumps
        changes: list[tuple[bytes, bytes | None]] = self._extra_changes.pop(partition, [])
        for key in keys:
            value = cache[key]
            changes.append((dump_key(key), None if value is _DELETED else dump_value(value)))
        if not changes:
            return
        records = [OutgoingRecord(k, v, [], None, partition) for k, v in changes]
        metadata = self.context.sender.produce(self.changelog_topic, records, None)
        offset = None if self.is_global else metadata[-1].offset + 1
        self._pending_store.append((partition, changes, offset))
        for key in keys:
            if cache.get(key) is _DELETED:
                del cache[key]

    def apply_flushed(self) -> None:
        """Write to the stores the changes ``flush`` wrote to the changelog (with the
        changelog offset they reach), once those are committed."""
        pending, self._pending_store = self._pending_store, []
        for partition, changes, offset in pending:
            self._store_of(partition).apply(partition, changes, offset)

    def discard_uncommitted(self) -> None:
        """exactly_once: forget changes whose transaction aborted (the cache too: it may
        hold them)."""
        self._pending_store.clear()
        self._cache.clear()
        self._forget_hot()
        for dirty in self._dirty.values():
            dirty.clear()

    # -- rebalancing ---------------------------------------------------------------------
    def on_partitions_assigned(self, tps: list[TopicPartition]) -> None:
        """Restore the table partitions whose numbers were assigned."""
        for partition in sorted({tp.partition for tp in tps} - self._active):
            if partition >= self.partition_count():
                continue
            self.restore(partition)
            self._active.add(partition)

    def on_partitions_revoked(self, tps: list[TopicPartition],
                              assigned: set[TopicPartition] | None = None) -> None:
        """Give up the partitions whose numbers no partition in ``assigned`` (what the
        worker still holds) has any more."""
        if self.is_global:
            return
        still_owned = {tp.partition for tp in assigned or () if tp not in set(tps)}
        for partition in {tp.partition for tp in tps} - still_owned:
            self._active.discard(partition)
            self._cache.pop(partition, None)
            self._dirty.pop(partition, None)
            self._forget_hot()
            self._close_store(partition)

    def _apply_changelog(self, partition: int, messages: list[Any], offset: int
                         ) -> list[tuple[bytes, bytes | None]]:
        """Write changelog records to the partition's store, with the offset they
        reach; returns the changes."""
        changes = [(m.key, m.value) for m in messages if m.key is not None]
        self._store_of(partition).apply(partition, changes, offset)
        return changes

    def restore(self, partition: int) -> int:
        """Replay the changelog past the store's offset; returns records applied."""
        broker = self.context.broker()
        tp = TopicPartition(self.changelog_topic, partition)
        start, end = broker.offsets(tp)
        store = self._store_of(partition)
        offset = store.offset(partition)
        if offset is None or offset < start or offset > end:
            if offset is not None and offset > end:
                logger.warning("table %s[%d]: store is ahead of its changelog (%d > %d); "
                               "rebuilding it from the changelog", self.name, partition,
                               offset, end)
            store.clear(partition)
            offset = start
        applied = 0
        while offset < end:
            messages = broker.fetch(tp, offset, RESTORE_BATCH)
            if not messages:
                break
            offset = messages[-1].offset + 1
            applied += len(self._apply_changelog(partition, messages, offset))
        self._cache.pop(partition, None)
        self._dirty.pop(partition, None)
        self._forget_hot()
        if self.window is not None:
            self.window.on_restored(partition)
        if applied:
            logger.info("table %s[%d]: restored %d changelog records", self.name,
                        partition, applied)
        return applied


class GlobalTable(Table):
    """A table every worker holds whole: it reads every changelog partition.

    Its stores are in memory and rebuilt from the changelog at start: every worker of
    an app holds all of it, so one file per worker would be needed otherwise."""

    is_global = True

    # every worker reads and writes a key in the partition it hashes to, whatever the
    # partition of the event being processed
    def _partition(self) -> int | None:
        return None

    def _partition_holding(self, key: Any) -> int | None:
        return self._partition_of_key(key)

    def __getitem__(self, key: Any) -> Any:
        value = self._find(key)
        if value is _DELETED:
            if self.default is None:
                raise KeyError(key)
            return self.default()
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        self._write(key, value)

    async def run_background(self) -> None:
        """Follow every changelog partition, so writes by other workers show up."""
        broker = self.context.broker()
        partitions = range(self.partition_count())
        positions = {p: self._store_of(p).offset(p) or 0 for p in partitions}
        while True:
            moved = False
            for partition in partitions:
                tp = TopicPartition(self.changelog_topic, partition)
                messages = broker.fetch(tp, positions[partition], RESTORE_BATCH)
                if messages:
                    moved = True
                    positions[partition] = messages[-1].offset + 1
                    self._apply_followed(partition, messages, positions[partition])
            await anyio.sleep(0 if moved else 0.05)

    def _apply_followed(self, partition: int, messages: list[Any], offset: int) -> None:
        changes = self._apply_changelog(partition, messages, offset)
        cache = self._cache.get(partition)
        if cache:
            dirty = self._dirty.get(partition, set())
            for raw_key, _ in changes:
                key = _hashable(self.key_serde.loads(raw_key)) if raw_key[:1] != b"\x00" \
                    else None
                if key is not None and key not in dirty:
                    cache.pop(key, None)


def _hashable(key: Any) -> Any:
    """JSON gives lists where the table had tuples (window keys ``(key, (start, end))``)."""
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key
