"""``Table``: a dict-like view over a store, partitioned like the stream updating it.

A key lives in the partition of the event being processed when it is written (after
``group_by`` that is the partition owning the key). Reads and writes go to an
in-memory cache per partition; changed keys are written out at each commit, in one
changelog batch per partition (``<app id>-<name>-changelog``, compacted; see
``streamkit.names`` for names over 249 characters) and then in one
store batch that also records the changelog offset reached. On start (and when a
partition is assigned) a table replays only the changelog past that offset.

The cache is bounded (``cache_size`` keys, the app's ``table_cache_size`` by default):
a key not in it is read from the store (a bloom filter answers for keys the store
never had), and after each commit, when every changed key is in the store, the
oldest clean keys are dropped (``streamkit.tables.cache``). A changed key is never
dropped before its commit; once half of ``cache_size`` keys are changed the table
asks the worker to commit early, so memory stays bounded however many keys the table
holds.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from streamkit.errors import ImproperlyConfigured
from streamkit.names import CHANGELOG, derived_topic_name
from streamkit.partitioner import partition_for_key
from streamkit.serializers import Serde
from streamkit.streams.event import current_stream
from streamkit.tables import changelog
from streamkit.tables.faust_options import refuse_faust_options
from streamkit.tables.cache import trim
from streamkit.tables.context import TableContext
from streamkit.tables.mapping import ABSENT, DELETED, TableMapping
from streamkit.tables.stores import Reader
from streamkit.types import TopicPartition

if TYPE_CHECKING:
    from streamkit.tables.joined import JoinedTable
    from streamkit.tables.windowed import WindowWrapper

logger = logging.getLogger("streamkit.tables")

_DELETED = DELETED
_ABSENT = ABSENT
#: the hot batch when there is none (never a stream's batch, not even None)
_NO_BATCH: Any = object()
#: the stream of the running agent task, None outside one
_stream_now = current_stream.get
#: how many changelog records a restore reads per fetch
RESTORE_BATCH = 10_000


class Table(TableMapping):
    """See the module docstring and DESIGN.md."""

    is_global = False

    def __init__(self, name: str, *, context: TableContext,
                 default: Callable[[], Any] | None = None,
                 key_type: Any = None, value_type: Any = None,
                 partitions: int | None = None, help: str | None = None,
                 on_window_close: Callable[[Any, Any], Any] | None = None,
                 key_serializer: str | None = None, value_serializer: str | None = None,
                 store: str | None = None, cache_size: int | None = None,
                 on_recover: Callable[[], Any] | None = None, window: Any = None,
                 changelog_topic: Any = None, use_partitioner: bool = False) -> None:
        refuse_faust_options(name, window=window, changelog_topic=changelog_topic,
                             use_partitioner=use_partitioner)
        if default is not None and not callable(default):
            raise ImproperlyConfigured(
                f"table {name!r}: default={default!r} must be callable (like int or list)")
        if cache_size is not None and (type(cache_size) is not int or cache_size < 0):
            raise ImproperlyConfigured(
                f"table {name!r}: cache_size={cache_size!r} must be a number of keys >= 0")
        self.context = context
        self.name = name
        self.default = default
        self.key_type = key_type
        self.value_type = value_type
        self.partitions = partitions
        self.help = help or ""
        self.on_window_close = on_window_close
        self.store_url = store or context.store_url
        #: keys kept in memory (None: the context's ``cache_size``)
        self._cache_size = cache_size
        # derived here: a name unfit for a topic fails where the table is declared
        self.changelog_topic = derived_topic_name(context.app_id, name, CHANGELOG,
                                                  what="table")
        self.key_serde = Serde(key_type, key_serializer or "json")
        self.value_serde = Serde(value_type, value_serializer or "json")
        self._json_int_keys = changelog.plain_json(self.key_serde)
        self._json_int_values = changelog.plain_json(self.value_serde)
        self._dump_value = changelog.encoder(self.value_serde)
        self.window: WindowWrapper | None = None
        #: Faust's recovery callbacks: called, without arguments, after each restore
        self._recover_callbacks: list[Callable[[], Any]] = [on_recover] if on_recover \
            else []
        #: one store per partition (RocksDB files are per partition, as in Faust, so
        #: workers of one app on one machine each open only the partitions they own)
        self._stores: dict[int, Any] = {}
        self._cache: dict[int, dict[Any, Any]] = {}
        self._dirty: dict[int, set[Any]] = {}
        #: keys flushed by the commit under way, per partition: the trim after it
        #: keeps them (``streamkit.tables.cache``)
        self._flushed_keys: dict[int, set[Any]] = {}
        #: the batch the agent last read or wrote in, with its partition's cache,
        #: dirty set and store lookup: the per-event paths skip the partition lookups
        self._hot_batch: Any = _NO_BATCH
        self._hot_cache: dict[Any, Any] = {}
        self._hot_dirty: set[Any] = set()
        self._hot_read: Reader = _nothing
        self._hot_limit = 0
        self._active: set[int] = set()
        self._extra_changes: dict[int, list[tuple[bytes, bytes | None]]] = {}
        self._warned_partitions: set[int] = set()
        #: changes written to the changelog, not yet to the stores (``apply_flushed``):
        #: (partition, keys, values, changelog offset reached)
        self._pending_store: list[tuple[int, list[bytes], list[bytes | None], Any]] = []
        #: keys the last flush deleted, per partition: in the cache (as deleted)
        #: until ``apply_flushed`` has the store drop them
        self._deleted_keys: dict[int, list[Any]] = {}

    def __repr__(self) -> str:
        return f"<Table {self.name}>"

    @property
    def cache_size(self) -> int:
        """Keys this table keeps in memory (see the module docstring)."""
        size = self._cache_size
        return self.context.cache_size if size is None else size

    def cached(self) -> int:
        """Keys in memory now, across partitions (changed ones included)."""
        return sum(len(cache) for cache in self._cache.values())

    # -- joining -----------------------------------------------------------------------
    def join(self, other: Table, *, how: str = "inner", name: str,
             foreign_key: Callable[[Any], Any] | None = None) -> JoinedTable:
        """A read-only table of ``(self's value, other's value)`` per key, kept up to
        date as either side changes (Kafka Streams' KTable-KTable join; ``how``:
        "inner", "left" or "outer"). See docs/joins.md, "Table-table joins".
        ``foreign_key``: ``other`` (a GlobalTable) is looked up by
        ``foreign_key(self's value)`` instead ("Foreign-key joins")."""
        from streamkit.tables.joined import JoinedTable
        joined: JoinedTable
        if foreign_key is not None:
            from streamkit.tables.foreign_key import ForeignKeyJoinedTable
            joined = ForeignKeyJoinedTable(name, self, other, how=how,
                                           foreign_key=foreign_key, context=self.context)
        else:
            joined = JoinedTable(name, self, other, how=how, context=self.context)
        self.context.add_table(joined)
        return joined

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
        if type(key) is int and self._json_int_keys:
            return b"%d" % key     # what JSON makes of it, without the encoder
        raw = self.key_serde.dumps(key)
        if raw is None:
            raise ImproperlyConfigured(f"table {self.name}: None cannot be a key (the "
                                       "changelog would keep no record of it)")
        return raw

    def load_key(self, raw: bytes) -> Any:
        """A key as the store and the changelog hold it, decoded: a windowed table's
        is ``(key, (start, end))``, its key read as the table's key type."""
        if self.window is None:
            return _hashable(self.key_serde.loads(raw))
        codec = self.key_serde.codec
        key, (start, end) = codec.loads(raw)
        return self.key_serde.loads(codec.dumps(key)), (start, end)

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
            raw = store.get(partition, self._dump_key(key)) if store else None
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
        (None while the partition has no cache yet). Once per batch: ask for a commit
        if the changed keys have reached the cache's bound."""
        partition = batch.tp.partition
        cache = self._cache.get(partition)
        if cache is not None:
            self._hot_batch = batch
            self._hot_cache = cache
            self._hot_dirty = self._dirty[partition]
            store = self._stores.get(partition)
            self._hot_read = _nothing if store is None else store.reader(partition)
            self._check_dirty()
        return cache

    def _check_dirty(self) -> None:
        """Ask for a commit once the changed keys reach half of ``cache_size``; set
        ``_hot_limit``, the size of the hot dirty set at which to look again (the
        other partitions' dirty sets do not grow while the agent is in this batch)."""
        dirty = sum(len(keys) for keys in self._dirty.values())
        limit = self.cache_size // 2
        if dirty and dirty >= limit:
            self.context.commit_soon()
            self._hot_limit = len(self._hot_dirty) + max(limit, 1)   # (not each write)
        else:
            self._hot_limit = limit - (dirty - len(self._hot_dirty))

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
                logger.warning("table %s: partition %d was revoked from this worker; "
                               "writes to it here are dropped and its new owner processes "
                               "those events again (nothing is lost)", self.name, partition)
        return True

    def _forget_hot(self) -> None:
        """Called wherever partition caches, dirty sets or stores are dropped or
        replaced, and after each commit."""
        self._hot_batch = _NO_BATCH
        self._hot_cache = {}
        self._hot_dirty = set()
        self._hot_read = _nothing
        self._hot_limit = 0

    def __getitem__(self, key: Any) -> Any:
        # fast path, once per event: the event's partition's cache, else its store
        try:
            batch = _stream_now().batch  # type: ignore[union-attr]
        except AttributeError:     # outside an agent's stream (None has no batch)
            batch = None
        if batch is self._hot_batch or (batch is not None and
                                        self._hot(batch) is not None):
            cache = self._hot_cache
            value = cache.get(key, _ABSENT)
            if value is _ABSENT:
                # not in memory: from the store. The cache grows: time to commit yet?
                if len(self._hot_dirty) >= self._hot_limit:
                    self._check_dirty()
                raw = self._hot_read(b"%d" % key if type(key) is int and
                                     self._json_int_keys else self._dump_key(key))
                value = cache[key] = _DELETED if raw is None \
                    else self.value_serde.loads(raw)
            if value is not _DELETED:
                return value
        else:
            value = self._find(key)
            if value is not _DELETED:
                return value
        if self.default is None:
            raise KeyError(key)
        return self.default()

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
                raw = store.get(partition, self._dump_key(key)) if store else None
                if raw is not None:
                    return self.value_serde.loads(raw)
            elif value is not _DELETED:
                return value
        return default

    def load_value(self, raw: bytes) -> Any:
        """A value as the changelog and the stores hold it, as readers of the table
        see it (``DELETED``: nothing to show; ``streamkit table`` reads through this)."""
        return self.value_serde.loads(raw)

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
                key = self.load_key(raw_key)
                if key not in seen:
                    yield key, self.value_serde.loads(raw_value)

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
        dirty = self._dirty[partition]
        dirty.add(key)
        if len(dirty) >= self.cache_size // 2:
            self._check_dirty()

    def __setitem__(self, key: Any, value: Any) -> None:
        try:
            batch = _stream_now().batch  # type: ignore[union-attr]
        except AttributeError:     # outside an agent's stream
            batch = None
        if batch is self._hot_batch or (batch is not None and
                                        self._hot(batch) is not None):
            self._hot_cache[key] = value
            self._hot_dirty.add(key)
        else:
            self._write(key, value)

    # -- lifecycle (called by the worker) -----------------------------------------------
    def open(self, source_partitions: int = 0) -> None:
        """Create the changelog topic (worker start); stores open per partition.

        Without ``partitions=``, a table gets as many partitions as its changelog
        already has, else as the most partitioned topic the app consumes (at least
        ``topic_partitions``)."""
        broker = self.context.broker()
        existing = broker.partition_count(self.changelog_topic)
        if self.partitions is None:
            self.partitions = existing or max(source_partitions,
                                              self.context.default_partitions)
        if existing is None:
            if not self.context.allow_declare:
                raise ImproperlyConfigured(
                    f"table {self.name}: changelog topic {self.changelog_topic!r} does not "
                    "exist, and topic_allow_declare=False: create it first")
            broker.create_topic(self.changelog_topic, partitions=self.partition_count(),
                                config={"cleanup.policy": "compact"}, exist_ok=True,
                                replication_factor=self.context.replicas)
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
        self._flushed_keys.clear()
        self._deleted_keys.clear()
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
        for partition, dirty in list(self._dirty.items()):
            if dirty or partition in self._extra_changes:
                self._flush_partition(partition, dirty)
                if dirty:
                    # a new set: the old one tells the trim after the commit which
                    # keys were just written
                    self._dirty[partition] = set()
                    self._flushed_keys[partition] = dirty
        for partition in list(self._extra_changes):
            self._flush_partition(partition, set())
        self._forget_hot()

    def _flush_partition(self, partition: int, keys: set[Any]) -> None:
        cache = self._cache_of(partition)
        changed = list(keys)
        values = list(map(cache.__getitem__, changed))
        raw_keys = changelog.encode_keys(changed, self._dump_key, self._json_int_keys)
        raw_values = changelog.encode_values(values, self._dump_value,
                                             self._json_int_values, _DELETED)
        deleted = [key for key, raw in zip(changed, raw_values, strict=True) if raw is None]
        extra = self._extra_changes.pop(partition, None)
        if extra:
            # (written first, as they were before: window bookkeeping)
            raw_keys = [k for k, _ in extra] + raw_keys
            raw_values = [v for _, v in extra] + raw_values
        if not raw_keys:
            return
        offset = changelog.write(self.context.sender.produce, self.changelog_topic,
                                 partition, raw_keys, raw_values)
        self._pending_store.append((partition, raw_keys, raw_values,
                                    None if self.is_global else offset))
        if deleted:
            # dropped from the cache once the store has the tombstones too: until
            # then the store still holds the old values (a join reads them here)
            self._deleted_keys.setdefault(partition, []).extend(deleted)

    def apply_flushed(self) -> None:
        """Write to the stores the changes ``flush`` wrote to the changelog (with the
        changelog offset they reach), once those are committed."""
        pending, self._pending_store = self._pending_store, []
        for partition, raw_keys, raw_values, offset in pending:
            self._store_of(partition).apply(partition, raw_keys, raw_values, offset)
        self._drop_deleted()
        self._trim()
        self._forget_hot()

    def _drop_deleted(self) -> None:
        """Forget the keys a flush deleted (the store has nothing for them now),
        unless written again since."""
        deleted, self._deleted_keys = self._deleted_keys, {}
        for partition, keys in deleted.items():
            cache = self._cache.get(partition)
            if cache is not None:
                for key in keys:
                    if cache.get(key, _ABSENT) is _DELETED:
                        del cache[key]

    def _trim(self) -> None:
        """Bound the caches (every key in them is in the store now): each partition
        keeps a share of ``cache_size`` in proportion to its size."""
        flushed, self._flushed_keys = self._flushed_keys, {}
        if any(self._dirty.values()):
            return   # (a flush without its commit: keep everything)
        limit = self.cache_size
        total = self.cached()
        if total <= limit:
            return
        for partition, cache in self._cache.items():
            trim(cache, limit * len(cache) // total, flushed.get(partition, frozenset()))

    def discard_uncommitted(self) -> None:
        """exactly_once: forget changes whose transaction aborted (the cache too: it may
        hold them)."""
        self._pending_store.clear()
        self._cache.clear()
        self._forget_hot()
        self._flushed_keys.clear()
        self._deleted_keys.clear()
        for dirty in self._dirty.values():
            dirty.clear()

    # -- rebalancing ---------------------------------------------------------------------
    def on_recover(self, fun: Callable[[], Any]) -> Callable[[], Any]:
        """``@table.on_recover``: call ``fun()`` (sync or ``async``) each time the
        table's assigned partitions are restored (Faust's recovery callback)."""
        self._recover_callbacks.append(fun)
        return fun

    def recover_callbacks(self) -> list[Callable[[], Any]]:
        """What ``on_recover`` connected; the worker calls them after a restore."""
        return list(self._recover_callbacks)

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
            self._flushed_keys.pop(partition, None)
            self._forget_hot()
            self._close_store(partition)

    def _apply_changelog(self, partition: int, messages: list[Any], offset: int
                         ) -> list[bytes]:
        """Write changelog records to the partition's store, with the offset they
        reach; returns the keys changed."""
        keyed = [m for m in messages if m.key is not None]
        keys = [m.key for m in keyed]
        self._store_of(partition).apply(partition, keys, [m.value for m in keyed], offset)
        return keys

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
            messages = broker.fetch(tp, offset, RESTORE_BATCH,
                                    isolation_level="read_committed")
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


def _nothing(raw_key: bytes) -> None:
    """The store lookup of a partition without a store: nothing there."""
    return None


def _hashable(key: Any) -> Any:
    """JSON gives lists where the table had tuples (window keys ``(key, (start, end))``)."""
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key
