"""``ForeignKeyJoinedTable``: Kafka Streams' KTable-KTable foreign-key join (KIP-213).

``trips.join(zones, foreign_key=lambda v: v.zone_id, how="inner", name="trip_zone")``
is a read-only table keyed by the left table's keys (``trips``), whose value for a key
is ``(left value, zones[foreign_key(left value)])``. ``how="inner"``: a left key is in
it when its foreign key is not None and ``zones`` holds it; ``how="left"``: whenever
the left table holds the key (the right side None when missing).

The right side is a ``GlobalTable``: every worker holds it whole, so a left key is
joined in the worker owning it, whatever partition its foreign key hashes to (Kafka
Streams sends subscriptions and responses through two internal topics instead; decision
054). A partitioned right table is refused where the join is declared.

As ``JoinedTable``, it is kept at each commit (``flush``), before the changelogs are
written: a left key changed since the last commit is joined again (its foreign key may
have changed: its old pairing is replaced); a right key changed since the last commit,
by this worker or by another (``GlobalTable.on_followed``), has every left key referring
to it joined again, through the reverse index ``foreign key -> left keys``. A re-join
caused by the right side writes only what changed (a worker sees its own writes to the
global table twice: when it flushes them and when it follows its changelog).

The reverse index is in memory, per left partition, derived from the left table's store
when the partition is assigned (after both are restored); each left key is then joined
again against the global table as it is now, so changes to it made while the partition
was elsewhere (or the worker down) reach the joined table (decision 055).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from streamkit.errors import ImproperlyConfigured
from streamkit.serializers.codecs import JSONCodec
from streamkit.tables.context import TableContext
from streamkit.tables.global_table import GlobalTable
from streamkit.tables.joined import JoinedTable, _check_side, _value_at
from streamkit.tables.table import _DELETED, Table
from streamkit.types import TopicPartition

#: the kinds of foreign-key join (Kafka Streams has no outer one)
FK_KINDS = ("inner", "left")


class ForeignKeyJoinedTable(JoinedTable):
    """See the module docstring. Declared by ``Table.join(..., foreign_key=)``."""

    def __init__(self, name: str, left: Table, right: Table, *, how: str,
                 foreign_key: Callable[[Any], Any], context: TableContext) -> None:
        if how not in FK_KINDS:
            raise ImproperlyConfigured(f"foreign-key join {name!r}: how={how!r} must be "
                                       "'inner' or 'left'")
        if not callable(foreign_key):
            raise ImproperlyConfigured(f"foreign-key join {name!r}: foreign_key="
                                       f"{foreign_key!r} must be a callable of the left "
                                       "table's value")
        if not isinstance(right, Table):
            raise ImproperlyConfigured(f"foreign-key join {name!r}: {right!r} is not a "
                                       "table")
        _check_side(name, left)
        lookup = _check_right(name, right)
        # (Table's, not JoinedTable's: its checks are those of an equal-key join)
        Table.__init__(self, name, context=context, key_type=left.key_type,
                       partitions=left.partitions,
                       help=f"{how} foreign-key join of {left.name} and {right.name}")
        self._set_sides(left, right, how)
        self.foreign_key = foreign_key
        #: per left partition: left key -> its foreign key (None: not indexed)
        self._fk_of: dict[int, dict[Any, Any]] = {}
        #: per left partition: foreign key -> the left keys referring to it
        self._referrers: dict[int, dict[Any, set[Any]]] = {}
        #: right keys other workers' (or this one's) changelog records changed since
        #: the last flush, as the global table followed them
        self._followed: set[Any] = set()
        lookup.on_followed(self._followed.update)

    def __repr__(self) -> str:
        return (f"<ForeignKeyJoinedTable {self.name}: {self.left.name} {self.how} "
                f"{self.right.name}>")

    # -- joining one key ---------------------------------------------------------------
    def _fk(self, key: Any, value: Any) -> Any:
        """The foreign key of the left value ``value`` of ``key``, with the key named
        when the user's function fails on it."""
        try:
            fk = self.foreign_key(value)
            hash(fk)
        except Exception as exc:
            raise ValueError(f"foreign-key join {self.name!r}: foreign_key failed on "
                             f"{self.left.name}[{key!r}] = {value!r}: {exc!r}") from exc
        return fk

    def _pair_of(self, key: Any, left: Any) -> tuple[Any, Any]:
        """(the foreign key, the joined value) of a left value (``_DELETED``: none)."""
        if left is _DELETED:
            return None, _DELETED
        fk = self._fk(key, left)
        right = _DELETED
        if fk is not None:
            right_table = self.right
            right = _value_at(right_table, right_table._partition_of_key(fk), fk)  # noqa: SLF001 - _SIDES
        if right is _DELETED:
            return fk, _DELETED if self.how == "inner" else (left, None)
        return fk, (left, right)

    def _pair_at(self, partition: int, key: Any) -> Any:
        """The joined value of ``key`` in ``partition`` now (reads), or ``_DELETED``."""
        return self._pair_of(key, _value_at(self.left, partition, key))[1]

    def _join_key(self, partition: int, key: Any, *, only_changes: bool) -> None:
        """Join ``key`` of ``partition`` again, index its foreign key, and make the
        result a changed key of this table when it says something new (with
        ``only_changes``, an equal value is not written again either)."""
        fk, pair = self._pair_of(key, _value_at(self.left, partition, key))
        self._index(partition, key, fk)
        old = _value_at(self, partition, key)
        if pair is _DELETED and old is _DELETED:
            return            # not in the join before either: nothing to say
        if only_changes and pair is not _DELETED and old is not _DELETED and \
                self._dump_value(pair) == self._dump_value(old):
            return
        self._cache_of(partition)[key] = pair
        self._dirty[partition].add(key)

    def _index(self, partition: int, key: Any, fk: Any) -> None:
        """Record that ``key`` refers to ``fk`` now (None: to nothing)."""
        fk_of = self._fk_of.setdefault(partition, {})
        referrers = self._referrers.setdefault(partition, {})
        old = fk_of.get(key)
        if old == fk and (old is None or key in referrers.get(old, ())):
            return
        if old is not None:
            keys = referrers.get(old)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del referrers[old]
        if fk is None:
            fk_of.pop(key, None)
        else:
            fk_of[key] = fk
            referrers.setdefault(fk, set()).add(key)

    # -- keeping it joined -------------------------------------------------------------
    def flush(self) -> None:
        """Join again the left keys the left table changed, then those referring to a
        right key that changed, then write this table's changes like any table's."""
        left_changed = _changed(self.left)
        right_changed: set[Any] = set(self._followed)
        self._followed.clear()
        for keys in _changed(self.right).values():
            right_changed.update(keys)
        for partition, keys in left_changed.items():
            if partition not in self._cache and self._given_up(partition):
                continue
            for key in keys:
                self._join_key(partition, key, only_changes=False)
        if right_changed:
            for partition, referrers in list(self._referrers.items()):
                done = left_changed.get(partition, set())
                for key in _referring(referrers, right_changed) - done:
                    self._join_key(partition, key, only_changes=True)
        Table.flush(self)

    def open(self, source_partitions: int = 0) -> None:
        """Open with the left table's partition count (it is opened first: declared
        first), and refuse a changelog left with another count."""
        count = self.left.partition_count()
        if self.partitions is None:
            self.partitions = count
        Table.open(self, source_partitions)
        if self.partition_count() != count:
            raise ImproperlyConfigured(
                f"foreign-key join {self.name!r}: its changelog {self.changelog_topic!r} "
                f"has {self.partition_count()} partitions, {self.left.name!r} {count}; "
                f"give {self.left.name!r} partitions= (or delete the joined table's "
                "topics)")

    def on_partitions_assigned(self, tps: list[TopicPartition]) -> None:
        """Restore the joined table's partitions, then derive each new partition's
        reverse index from the left table's store and join its keys again against
        the global table as it is now (decision 055)."""
        before = set(self._active)
        super().on_partitions_assigned(tps)
        for partition in sorted(self._active - before):
            self._rebuild_index(partition, rejoin=True)

    def _rebuild_index(self, partition: int, *, rejoin: bool) -> None:
        """The reverse index of ``partition`` from the left table's store (what its
        last commit wrote); with ``rejoin``, each of its keys joined again."""
        self._fk_of[partition] = {}
        self._referrers[partition] = {}
        left = self.left
        store = left._stores.get(partition)  # noqa: SLF001 - see joined._SIDES
        if store is None:
            return
        for raw_key, raw_value in store.items(partition):
            if raw_key[:1] == b"\x00":
                continue      # streamkit's own bookkeeping
            key = left.load_key(raw_key)
            if rejoin:
                self._join_key(partition, key, only_changes=True)
            else:
                self._index(partition, key, self._fk(key, left.load_value(raw_value)))
        if len(self._dirty.get(partition, ())) >= self.cache_size // 2:
            self.context.commit_soon()

    def on_partitions_revoked(self, tps: list[TopicPartition],
                              assigned: set[TopicPartition] | None = None) -> None:
        super().on_partitions_revoked(tps, assigned)
        for partition in set(self._fk_of) - self._active:
            self._fk_of.pop(partition, None)
            self._referrers.pop(partition, None)

    def discard_uncommitted(self) -> None:
        """exactly_once, a transaction aborted: the index follows the left table back
        to its stores (what was committed)."""
        super().discard_uncommitted()
        for partition in list(self._fk_of):
            self._rebuild_index(partition, rejoin=False)

    def close(self) -> None:
        super().close()
        self._fk_of.clear()
        self._referrers.clear()
        self._followed.clear()


def _changed(table: Table) -> dict[int, set[Any]]:
    """partition -> keys ``table`` changed and has not yet written to its store (see
    ``JoinedTable._changed_keys``)."""
    changed: dict[int, set[Any]] = {}
    for keys_of in (table._dirty, table._flushed_keys):  # noqa: SLF001 - see _SIDES
        for partition, keys in keys_of.items():
            if keys:
                changed.setdefault(partition, set()).update(keys)
    return changed


def _referring(referrers: dict[Any, set[Any]], fks: Iterable[Any]) -> set[Any]:
    """The left keys referring to any of ``fks``."""
    keys: set[Any] = set()
    for fk in fks:
        found = referrers.get(fk)
        if found:
            keys.update(found)
    return keys


def _check_right(name: str, right: Table) -> GlobalTable:
    """A foreign-key join looks its foreign keys up in a global table (decision 054):
    ``right``, once checked."""
    if not isinstance(right, GlobalTable):
        raise ImproperlyConfigured(
            f"foreign-key join {name!r}: {right.name!r} is a partitioned table; the right "
            "side of a foreign-key join must be an app.GlobalTable (every worker holds "
            "it whole), see docs/joins.md")
    if right.window is not None:
        raise ImproperlyConfigured(f"foreign-key join {name!r}: {right.name!r} is a "
                                   "windowed table")
    if not isinstance(right.value_serde.codec, JSONCodec):
        raise ImproperlyConfigured(
            f"foreign-key join {name!r}: {right.name!r} encodes its values with "
            f"{right.value_serde.serializer!r}; joined tables need JSON-encoded sides")
    return right
