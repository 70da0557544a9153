"""``SetTable`` and ``SetGlobalTable``: tables whose values are sets (Faust's).

``table[key]`` is a ``ChangeloggedSet``: a set whose changes (``add``, ``discard``,
``update``, ``difference_update``, ``intersection_update``,
``symmetric_difference_update``, ``clear``, ``remove``, ``pop``, ``|=`` ...) mark the
key changed in the table, so the next commit writes the key's whole set to the
changelog and the store, like any changed key of a table. The changelog stays
compacted: one record per key holds its set (Faust writes one record per operation
instead; decision 013). A set that becomes empty leaves the table.

Elements are stored as JSON (or the table's ``value_serializer``): strings, numbers,
booleans, None, and tuples of them (tuples come back as tuples).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSet
from typing import Any

from streamkit.errors import ImproperlyConfigured
from streamkit.serializers import Serde
from streamkit.tables.context import TableContext
from streamkit.tables.global_table import GlobalTable
from streamkit.tables.table import _DELETED, Table, _hashable


class ChangeloggedSet(MutableSet[Any]):
    """The set of one key of a ``SetTable``; its changes go to the table's changelog.
    Set operations that make a new set (``|``, ``&``, ``-``, ``^``) give plain sets."""

    __slots__ = ("table", "partition", "key", "data")

    def __init__(self, table: SetTable, partition: int, key: Any, data: set[Any]) -> None:
        self.table = table
        self.partition = partition
        self.key = key
        #: the elements (changing it directly bypasses the changelog)
        self.data = data

    def __repr__(self) -> str:
        return repr(self.data) if self.data else "set()"

    @classmethod
    def _from_iterable(cls, iterable: Iterable[Any]) -> set[Any]:
        return set(iterable)

    def __contains__(self, element: object) -> bool:
        return element in self.data

    def __iter__(self) -> Iterator[Any]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def _changed(self) -> None:
        self.table.set_changed(self.partition, self.key, self.data)

    def add(self, element: Any) -> None:
        if element not in self.data:
            self.data.add(element)
            self._changed()

    def discard(self, element: Any) -> None:
        if element in self.data:
            self.data.discard(element)
            self._changed()

    def update(self, *others: Iterable[Any]) -> None:
        self.data.update(*others)
        self._changed()

    def difference_update(self, *others: Iterable[Any]) -> None:
        self.data.difference_update(*others)
        self._changed()

    def intersection_update(self, *others: Iterable[Any]) -> None:
        self.data.intersection_update(*others)
        self._changed()

    def symmetric_difference_update(self, other: Iterable[Any]) -> None:
        self.data.symmetric_difference_update(other)
        self._changed()

    def clear(self) -> None:
        if self.data:
            self.data.clear()
            self._changed()


class _SetSerde:
    """The table's value Serde for whole sets: a set is written as a list of its
    elements, read back as a set (lists inside it as tuples, to be hashable)."""

    def __init__(self, elements: Serde) -> None:
        self.elements = elements
        self.codec = elements.codec
        self.type_ = set
        self.serializer = elements.serializer

    def dumps(self, value: Any) -> bytes | None:
        return self.elements.dumps(list(value))

    def loads(self, raw: bytes | None) -> Any:
        return {_hashable(element) for element in self.elements.loads(raw) or ()}


class SetTable(Table):
    """A table of sets (see the module docstring). ``default`` is always ``set``."""

    def __init__(self, name: str, *, context: TableContext, default: Any = None,
                 start_manager: bool = False, **options: Any) -> None:
        if start_manager:
            raise ImproperlyConfigured(
                f"set table {name!r}: start_manager=True (Faust's agent that applies set "
                "operations sent to a topic) is not provided; change the sets in the "
                "agent that owns the key")
        super().__init__(name, context=context, default=set, **options)
        self.value_serde = _SetSerde(self.value_serde)  # type: ignore[assignment]
        self._json_int_values = False
        self._dump_value = self.value_serde.dumps

    def __repr__(self) -> str:
        return f"<SetTable {self.name}>"

    def _windowed(self, window: Any, expires_after_close: Any = None) -> Any:
        raise ImproperlyConfigured(f"set table {self.name!r}: windowed set tables are "
                                   "not provided")

    def _partition_for(self, key: Any) -> int:
        """The partition ``key`` is read and written in: the event's, else where the
        key is, else where it hashes to (as ``Table._write``)."""
        partition = self._partition()
        if partition is None:
            partition = self._partition_holding(key)
            if partition is None:
                partition = self._partition_of_key(key)
        return partition

    def __getitem__(self, key: Any) -> ChangeloggedSet:
        partition = self._partition_for(key)
        value = self._lookup(partition, key)
        # an absent key gets an empty set, stored once something is added to it
        data = set() if value is _DELETED else value
        return ChangeloggedSet(self, partition, key, data)

    def __setitem__(self, key: Any, value: Iterable[Any]) -> None:
        if isinstance(value, ChangeloggedSet) and value.table is self and value.key == key:
            data = value.data     # ``table[k] |= {x}`` assigns the set back
        else:
            data = set(value)
        self._write(key, data if data else _DELETED)

    def set_changed(self, partition: int, key: Any, data: set[Any]) -> None:
        """Mark the set of ``key`` (in ``partition``) changed: the next commit writes
        it (an empty set: the key leaves the table)."""
        self._write_at(partition, key, data if data else _DELETED)

    def items(self) -> Iterator[tuple[Any, Any]]:
        """(key, a copy of its set) for every key the worker holds."""
        return ((key, set(value)) for key, value in super().items())


class SetGlobalTable(SetTable, GlobalTable):
    """A set table every worker holds whole."""

    def __repr__(self) -> str:
        return f"<SetGlobalTable {self.name}>"
