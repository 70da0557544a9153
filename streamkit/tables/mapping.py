"""The dict methods of a table that follow from its primitives.

``Table`` does the work of a key lookup, a write and a walk over what it holds
(``get``, ``_write``, ``items``: the cache, the store and the partition they belong
to); the methods here only combine those, as ``collections.abc.MutableMapping``'s do.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import Any

from streamkit.terminal import ansitable

#: the value of a key the table does not hold (deleted, or a miss the store confirmed)
DELETED: Any = object()
#: a value not looked up yet
ABSENT: Any = object()


class TableMapping:
    """Base of ``Table``: ``keys``, ``values``, ``pop``, ``update``, ... over the
    table's ``get``, ``_write`` and ``items``."""

    name: str

    def get(self, key: Any, default: Any = None) -> Any:
        raise NotImplementedError

    def items(self) -> Iterator[tuple[Any, Any]]:
        raise NotImplementedError

    def _write(self, key: Any, value: Any) -> None:
        raise NotImplementedError

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

    def as_ansitable(self, title: str = "{table.name}", *, key: str = "Key",
                     value: str = "Value", sort: bool = False,
                     sortkey: Callable[[Any], Any] = itemgetter(0), target: Any = None
                     ) -> str:
        """The table as a text table, as Faust draws it: ``title`` (``{table}`` is
        this table), columns ``key`` and ``value``, rows sorted by ``sortkey`` when
        ``sort``. ``target`` (Faust's output file, for its colours) is ignored."""
        return ansitable(self.items(), title.format(table=self), key=key, value=value,
                         sort=sort, sortkey=sortkey)

    def __delitem__(self, key: Any) -> None:
        if self.get(key, ABSENT) is ABSENT:
            raise KeyError(key)
        self._write(key, DELETED)

    def pop(self, key: Any, *default: Any) -> Any:
        value = self.get(key, ABSENT)
        if value is ABSENT:
            if default:
                return default[0]
            raise KeyError(key)
        self._write(key, DELETED)
        return value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        value = self.get(key, ABSENT)
        if value is ABSENT:
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
            self._write(key, DELETED)
