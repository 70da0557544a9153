"""``GlobalTable``: a table every worker holds whole, following its changelog."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel

from streamkit.log.watch import AppendWatch
from streamkit.tables.context import TableContext
from streamkit.tables.table import _ABSENT, _DELETED, RESTORE_BATCH, Table
from streamkit.transport.base import WatchedBroker
from streamkit.types import TopicPartition

#: how often a global table looks at its changelog where no watch can wake it (Kafka)
FOLLOW_SECONDS = 0.05
#: keys whose partition a global table remembers (see ``get``) before it forgets them all
KEY_PARTITIONS = 100_000


class GlobalTable(Table):
    """A table every worker holds whole: it reads every changelog partition.

    Its stores are in memory and rebuilt from the changelog at start: every worker of
    an app holds all of it, so one file per worker would be needed otherwise."""

    is_global = True
    #: key -> the partition it hashes to (``get``)
    _key_partitions: dict[Any, int]

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self._key_partitions = {}
        #: called with the keys each followed changelog batch changed (a foreign-key
        #: join re-joins the keys referring to them: writes by other workers)
        self._followers: list[Callable[[list[Any]], None]] = []

    def on_followed(self, callback: Callable[[list[Any]], None]) -> None:
        """Call ``callback(keys)`` after each batch of changelog records this worker
        follows (written by any worker, its own included) is in the table."""
        self._followers.append(callback)

    # every worker reads and writes a key in the partition it hashes to, whatever the
    # partition of the event being processed
    def _partition(self) -> int | None:
        return None

    def _partition_holding(self, key: Any) -> int | None:
        return self._partition_of_key(key)

    def open(self, source_partitions: int = 0) -> None:
        self._key_partitions.clear()    # the partition count is settled here
        super().open(source_partitions)

    def bind(self, context: TableContext) -> None:
        self._key_partitions.clear()
        super().bind(context)

    def get(self, key: Any, default: Any = None) -> Any:
        # once per event of a stream-table join: the partition a key hashes to is
        # remembered (hashing costs more than the lookup in the partition's cache)
        partition = self._key_partitions.get(key)
        if partition is None:
            if len(self._key_partitions) >= KEY_PARTITIONS:
                self._key_partitions.clear()
            partition = self._key_partitions[key] = self._partition_of_key(key)
        cache = self._cache.get(partition)
        value = _ABSENT if cache is None else cache.get(key, _ABSENT)
        if value is _ABSENT:
            value = self._lookup(partition, key)
        return default if value is _DELETED else value

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
        """Follow every changelog partition, so writes by other workers show up: woken
        by their appends where the broker can tell (decision 111), else every 50 ms."""
        broker = self.context.broker()
        partitions = range(self.partition_count())
        tps = [TopicPartition(self.changelog_topic, p) for p in partitions]
        positions = {p: self._store_of(p).offset(p) or 0 for p in partitions}
        watch = broker.append_watch() if isinstance(broker, WatchedBroker) else None
        try:
            while True:
                moved = False
                for partition, tp in zip(partitions, tps, strict=True):
                    messages = broker.fetch(tp, positions[partition], RESTORE_BATCH,
                                            isolation_level="read_committed")
                    if messages:
                        moved = True
                        positions[partition] = messages[-1].offset + 1
                        self._apply_followed(partition, messages, positions[partition])
                if moved:
                    await anyio.lowlevel.checkpoint()
                else:
                    await _wait_for_appends(watch, tps)
        finally:
            if watch is not None:
                watch.close()

    def _apply_followed(self, partition: int, messages: list[Any], offset: int) -> None:
        changed = self._apply_changelog(partition, messages, offset)
        cache = self._cache.get(partition)
        if cache:
            dirty = self._dirty.get(partition, set())
            for raw_key in changed:
                key = self.load_key(raw_key) if raw_key[:1] != b"\x00" \
                    else None
                if key is not None and key not in dirty:
                    cache.pop(key, None)
        if self._followers:
            keys = [self.load_key(raw) for raw in changed if raw[:1] != b"\x00"]
            for callback in self._followers:
                callback(keys)


async def _wait_for_appends(watch: AppendWatch | None, tps: list[TopicPartition]) -> None:
    """Wait for an append to ``tps``, then take the watch's events (before the caller
    reads again, so a later append wakes it again)."""
    if watch is None:
        await anyio.sleep(FOLLOW_SECONDS)
        return
    if watch.watch(tps):
        return                       # set up just now: read once more before waiting
    fd = watch.fileno()
    if fd is None:
        await anyio.sleep(watch.max_wait)
    else:
        with anyio.move_on_after(watch.max_wait):
            await anyio.wait_readable(fd)
    watch.clear()
