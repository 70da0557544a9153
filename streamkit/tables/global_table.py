"""``GlobalTable``: a table every worker holds whole, following its changelog."""
from __future__ import annotations

from typing import Any

import anyio

from streamkit.tables.table import _DELETED, RESTORE_BATCH, Table, _hashable
from streamkit.types import TopicPartition


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
