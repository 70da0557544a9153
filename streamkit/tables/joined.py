"""``JoinedTable``: a table-table join, Kafka Streams' KTable-KTable join.

``counts.join(fares, how="left", name="zone_summary")`` is a read-only table whose
value for a key is the pair ``(counts' value, fares' value)``, present when the kind
of join says so: "inner" when both sides hold the key, "left" when the left side
does, "outer" when either does (a missing side is None).

It is kept at each commit, before the changelogs are written (``flush``): every key
either side changed since the previous commit is joined again, and the result is
written like any changed key of a table (to ``<app id>-<name>-changelog``, then its
store); a key that leaves the join gets a tombstone. Nothing is added to the sides'
per-event paths: the join reads the keys the sides already keep for their own commit.
Several changes of one key between two commits give one update, as in Kafka Streams
with its record cache (decision 045). ``table[key]`` reads both sides at once, so it
is current inside the worker; ``items()``, the web views and ``streamkit table`` show
the joined table as of the last commit.

``changes()`` is the changelog read as a topic: an agent over it gets
``(key, (left, right))`` events, and ``(key, None)`` when a key leaves the join
(decision 046).
"""
from __future__ import annotations

from typing import Any

import msgspec

from streamkit.errors import ImproperlyConfigured
from streamkit.serializers import Serde
from streamkit.serializers.codecs import JSONCodec
from streamkit.tables.context import TableContext
from streamkit.tables import changelog
from streamkit.tables.table import _ABSENT, _DELETED, Table
from streamkit.tables.versioned import VersionedTable

# _SIDES: a join reads its sides' cache, store and changed keys, as the tables' own
# commit does, through their private members: it is part of the tables' commit, in
# their package, not a user of their mapping interface (which would fill their
# caches with misses and could not tell a change from the last commit).

#: the kinds of join: which sides must hold a key for the join to hold it
KINDS = ("inner", "left", "outer")

_Raw = msgspec.Raw
_decode_pair = msgspec.json.Decoder(tuple[msgspec.Raw, msgspec.Raw]).decode


class PairCodec:
    """A joined value ``(left, right)`` as the JSON array of the two sides' JSON
    values (``null`` for a missing side): readable by any JSON reader, and decoded
    back with each side's own types."""

    def __init__(self, left: Table, right: Table) -> None:
        self._dump_left = changelog.encoder(left.value_serde)
        self._dump_right = changelog.encoder(right.value_serde)
        self._load_left = left.value_serde.loads
        self._load_right = right.value_serde.loads

    def dumps(self, pair: Any) -> bytes:
        left, right = pair
        raw_left = None if left is None else self._dump_left(left)
        raw_right = None if right is None else self._dump_right(right)
        return b"[%s,%s]" % (raw_left or b"null", raw_right or b"null")

    def loads(self, data: bytes) -> Any:
        raw_left, raw_right = _decode_pair(data)
        left = bytes(raw_left)
        right = bytes(raw_right)
        return (None if left == b"null" else self._load_left(left),
                None if right == b"null" else self._load_right(right))


class JoinedTable(Table):
    """See the module docstring. Declared by ``Table.join``."""

    def __init__(self, name: str, left: Table, right: Table, *, how: str,
                 context: TableContext) -> None:
        if how not in KINDS:
            raise ImproperlyConfigured(f"table join {name!r}: how={how!r} must be one of "
                                       "'inner', 'left', 'outer'")
        if not isinstance(right, Table):
            raise ImproperlyConfigured(f"table join {name!r}: {right!r} is not a table")
        for side in (left, right):
            _check_side(name, side)
        super().__init__(name, context=context, key_type=left.key_type,
                         partitions=left.partitions or right.partitions,
                         help=f"{how} join of {left.name} and {right.name}")
        self._set_sides(left, right, how)

    def _set_sides(self, left: Table, right: Table, how: str) -> None:
        """Take the sides, the left side's keys and the pair codec."""
        self.left = left
        self.right = right
        self.how = how
        # keys as the left side encodes them: same bytes, same partitions
        self.key_serde = left.key_serde
        self._json_int_keys = left._json_int_keys  # noqa: SLF001 - see _SIDES
        self.value_serde = Serde(None, PairCodec(left, right))
        self._json_int_values = False
        self._dump_value = self.value_serde.dumps

    def __repr__(self) -> str:
        return f"<JoinedTable {self.name}: {self.left.name} {self.how} {self.right.name}>"

    # -- read-only -------------------------------------------------------------------
    def _refuse(self, key: Any, value: Any) -> None:
        raise TypeError(f"table {self.name!r} is the {self.how} join of "
                        f"{self.left.name!r} and {self.right.name!r}: it is read-only, "
                        "write to those tables instead")

    __setitem__ = _refuse
    _write = _refuse

    def _windowed(self, window: Any, expires_after_close: Any = None) -> Any:
        raise ImproperlyConfigured(f"table {self.name!r}: a joined table has no windows")

    # -- reading: current values from both sides ---------------------------------------
    def _current(self, key: Any) -> Any:
        """The joined value of ``key`` now: in the event's partition, else (outside
        an event, as ``Table.get``) in the first partition holding it."""
        partition = self._partition()
        if partition is not None:
            return self._pair_at(partition, key)
        partitions = {*self.left._readable_partitions(),  # noqa: SLF001 - see _SIDES
                      *self.right._readable_partitions()}  # noqa: SLF001
        for partition in sorted(partitions):
            value = self._pair_at(partition, key)
            if value is not _DELETED:
                return value
        return _DELETED

    def __getitem__(self, key: Any) -> Any:
        value = self._current(key)
        if value is _DELETED:
            raise KeyError(key)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._current(key)
        return default if value is _DELETED else value

    def peek(self, key: Any, default: Any = None) -> Any:
        return self.get(key, default)

    def __contains__(self, key: Any) -> bool:
        return self._current(key) is not _DELETED

    def _pair_at(self, partition: int, key: Any) -> Any:
        """The joined value of ``key`` in ``partition`` now, or ``_DELETED``."""
        left = _value_at(self.left, partition, key)
        right = _value_at(self.right, partition, key)
        has_left = left is not _DELETED
        has_right = right is not _DELETED
        how = self.how
        if (how == "inner" and not (has_left and has_right)) or \
                (how == "left" and not has_left) or not (has_left or has_right):
            return _DELETED
        return (left if has_left else None, right if has_right else None)

    # -- keeping it joined -------------------------------------------------------------
    def flush(self) -> None:
        """Join again each key either side changed since the last commit, then write
        the joined table's changes like any table's."""
        for partition, keys in self._changed_keys().items():
            self._join_partition(partition, keys)
        super().flush()

    def _join_partition(self, partition: int, keys: set[Any]) -> None:
        """Join ``keys`` of ``partition`` again; the changed results become changed
        keys of this table (without ``_write_at``'s early-commit check: this is the
        commit)."""
        if partition not in self._cache and self._given_up(partition):
            return
        cache = self._cache_of(partition)
        dirty = self._dirty[partition]
        pair_at = self._pair_at
        for key in keys:
            value = pair_at(partition, key)
            if value is _DELETED and _value_at(self, partition, key) is _DELETED:
                continue      # not in the join before either: nothing to say
            cache[key] = value
            dirty.add(key)

    def _changed_keys(self) -> dict[int, set[Any]]:
        """partition -> keys either side changed and has not yet written to its
        store (changed since its last flush, or flushed in this commit: the sides
        may flush before or after this table)."""
        changed: dict[int, set[Any]] = {}
        for side in (self.left, self.right):
            for keys_of in (side._dirty, side._flushed_keys):  # noqa: SLF001 - _SIDES
                for partition, keys in keys_of.items():
                    if keys:
                        changed.setdefault(partition, set()).update(keys)
        return changed

    def open(self, source_partitions: int = 0) -> None:
        """Check the sides are co-partitioned (they are opened first: declared
        first), then open the joined table with their partition count."""
        left, right = self.left, self.right
        count = left.partition_count()
        if right.partition_count() != count:
            raise ImproperlyConfigured(
                f"table join {self.name!r}: {left.name!r} has {count} partitions and "
                f"{right.name!r} has {right.partition_count()}; a table-table join needs "
                "co-partitioned tables: give both the same partitions=")
        if self.partitions is None:
            self.partitions = count
        super().open(source_partitions)
        if self.partition_count() != count:
            raise ImproperlyConfigured(
                f"table join {self.name!r}: its changelog {self.changelog_topic!r} has "
                f"{self.partition_count()} partitions, its tables {count}; give the "
                "tables partitions= (or delete the joined table's topics)")

    def changes(self) -> Any:
        """The joined table's changes, a topic for an agent: ``(key, (left, right))``
        events, ``(key, None)`` when a key leaves the join. It is the joined table's
        changelog, read by the agent's consumer group (decision 046)."""
        return self.context.topic(
            self.changelog_topic, key_type=self.key_type,
            key_serializer=self.key_serde.serializer,
            value_serializer=self.value_serde.codec, partitions=self.partitions,
            compacting=True, internal=True)


def _value_at(table: Table, partition: int, key: Any) -> Any:
    """``table``'s value of ``key`` in ``partition`` (``_DELETED``: none), from its
    cache or its store, without filling its cache with what the join reads."""
    cache = table._cache.get(partition)  # noqa: SLF001 - see _SIDES
    if cache is not None:
        value = cache.get(key, _ABSENT)
        if value is not _ABSENT:
            return value
    store = table._stores.get(partition)  # noqa: SLF001
    if store is None:
        return _DELETED
    raw = store.get(partition, table._dump_key(key))  # noqa: SLF001
    return _DELETED if raw is None else table.value_serde.loads(raw)


def _check_side(name: str, side: Table) -> None:
    """Refuse the sides this join does not handle (yet), with the reason."""
    if side.is_global or side.window is not None:
        raise ImproperlyConfigured(
            f"table join {name!r}: {side.name!r} is a "
            f"{'global' if side.is_global else 'windowed'} table; table-table joins "
            "join partitioned tables without windows")
    if isinstance(side, VersionedTable):
        raise ImproperlyConfigured(
            f"table join {name!r}: {side.name!r} is a versioned table; table-table "
            "joins of versioned tables are not supported yet")
    if not isinstance(side.value_serde.codec, (JSONCodec, PairCodec)):
        raise ImproperlyConfigured(
            f"table join {name!r}: {side.name!r} encodes its values with "
            f"{side.value_serde.serializer!r}; joined tables need JSON-encoded sides")
