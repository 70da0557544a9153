"""The log's bytes in this process's memory (memory://): the same operations as the
files of ``streamkit.log.storage`` (log://), so every rule of the log is written once,
above both."""
from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from streamkit.errors import TopicExists, UnknownTopic
from streamkit.log.segment import Handle, MemoryHandle
from streamkit.log.storage import RecoveryPoint, boot_id, check_partition_increase

if TYPE_CHECKING:
    from streamkit.log.groupstore import MemoryGroup
    from streamkit.log.transactions import MemoryTxnStore


class Bell(Protocol):
    """What an in-memory partition wakes when records are appended to it (a reader's
    ``streamkit.log.watch.MemoryAppendWatch``)."""

    def ring(self) -> None: ...


class MemoryPartitionStore:
    """The segments of one partition held in bytearrays."""

    def __init__(self) -> None:
        #: rung by every append (``write_recovery``); swapped whole, so an append in
        #: another thread rings a consistent tuple without a lock
        self._bells: tuple[weakref.ReferenceType[Bell], ...] = ()
        self.segments: dict[int, MemoryHandle] = {0: MemoryHandle()}
        self._version = 0
        self._lock = threading.RLock()
        self.deleted = False
        self.cleaned = 0
        self.rolled: tuple[int, int] | None = None
        self.recovery: RecoveryPoint | None = RecoveryPoint(0, 0, 0, boot_id())
        #: the transaction index, once a transaction wrote here
        self.transactions: MemoryHandle | None = None

    def version(self) -> int:
        if self.deleted:
            raise FileNotFoundError("partition deleted")
        return self._version

    def segment_bases(self) -> list[int]:
        return sorted(self.segments)

    def open(self, base: int) -> Handle | None:
        return self.segments.get(base)

    def exists(self, base: int) -> bool:
        return base in self.segments

    def identity(self, base: int) -> object:
        handle = self.segments.get(base)
        return None if handle is None else handle.identity

    def create(self, base: int) -> Handle:
        handle = self.segments[base] = MemoryHandle()
        self._version += 1
        return handle

    def replace(self, base: int, data: bytes) -> None:
        old = self.segments.get(base)
        if old is not None:
            old.linked = False
        self.segments[base] = MemoryHandle(data)
        self._version += 1

    def delete(self, base: int) -> None:
        old = self.segments.pop(base, None)
        if old is not None:
            old.linked = False
        self._version += 1

    def mark_deleted(self) -> None:
        """The topic was deleted: every handle of it is gone, as files are."""
        self.deleted = True
        for handle in self.segments.values():
            handle.linked = False
        self._ring()

    def add_bell(self, bell: Bell) -> None:
        """Ring ``bell`` at every append from now on (it is held weakly)."""
        with self._lock:
            self._bells = (*self._others(bell), weakref.ref(bell))

    def remove_bell(self, bell: Bell) -> None:
        with self._lock:
            self._bells = self._others(bell)

    def _others(self, bell: Bell) -> tuple[weakref.ReferenceType[Bell], ...]:
        return tuple(ref for ref in self._bells if ref() not in (None, bell))

    def _ring(self) -> None:
        for ref in self._bells:
            bell = ref()
            if bell is not None:
                bell.ring()

    @contextmanager
    def lock(self) -> Iterator[None]:
        with self._lock:
            yield

    @contextmanager
    def sync_lock(self) -> Iterator[tuple[int, int]]:
        yield (1 << 62, 0)          # memory is never fsynced: nothing to wait for

    def set_synced(self, mark: tuple[int, int]) -> None:
        pass

    def read_synced(self) -> tuple[int, int]:
        return (1 << 62, 0)

    def read_recovery(self) -> RecoveryPoint | None:
        return self.recovery

    def write_recovery(self, point: RecoveryPoint) -> None:
        self.recovery = point
        self._ring()                # what inotify does for the file of log://

    def read_cleaned(self) -> int:
        return self.cleaned

    def write_cleaned(self, offset: int) -> None:
        self.cleaned = offset

    def read_rolled(self) -> tuple[int, int] | None:
        return self.rolled

    def write_rolled(self, rolled: tuple[int, int]) -> None:
        self.rolled = rolled

    def open_transactions(self, create: bool) -> Handle | None:
        if self.transactions is None and create:
            self.transactions = MemoryHandle()
        return self.transactions

    def has_transactions(self) -> bool:
        return self.transactions is not None

    def replace_transactions(self, data: bytes) -> None:
        if self.transactions is not None:
            self.transactions.linked = False
        self.transactions = MemoryHandle(data)

    def close(self) -> None:
        pass


class MemoryStorage:
    """Topics held in this process's memory (shared by every memory:// broker of one
    name)."""

    def __init__(self) -> None:
        #: name -> (partitions, config, stores, identity)
        self.topics: dict[str, tuple[int, dict[str, str], list[MemoryPartitionStore],
                                     int]] = {}
        #: identities count up: ``id()`` of a deleted topic's entry can come back for
        #: the next one, and a broker would then keep writing to the deleted stores
        self._identities = itertools.count()
        self.lock = threading.RLock()
        self.groups: dict[str, MemoryGroup] = {}
        #: the transactional ids' states (set by the first broker that needs them)
        self.txn_store: MemoryTxnStore | None = None

    def ensure_root(self) -> None:
        pass

    def read_topic(self, name: str) -> tuple[int, dict[str, str], object] | None:
        entry = self.topics.get(name)
        if entry is None:
            return None
        return entry[0], entry[1], entry[3]

    def topic_identity(self, name: str) -> object:
        entry = self.topics.get(name)
        return None if entry is None else entry[3]

    def create_topic(self, name: str, partitions: int, config: dict[str, str]) -> None:
        with self.lock:
            if name in self.topics:
                raise TopicExists(f"topic {name!r} already exists")
            self.topics[name] = (partitions, config,
                                 [MemoryPartitionStore() for _ in range(partitions)],
                                 next(self._identities))

    def write_topic(self, name: str, partitions: int, config: dict[str, str],
                    replace: bool) -> None:
        """Replace ``name``'s config (a new identity, as a new topic.json on disk)."""
        with self.lock:
            count, _old, stores, _identity = self.topics[name]
            self.topics[name] = (count, config, stores, next(self._identities))

    def add_partitions(self, name: str, count: int) -> int:
        """Grow ``name`` to ``count`` partitions; returns how many it had."""
        with self.lock:
            entry = self.topics.get(name)
            if entry is None:
                raise UnknownTopic(f"topic {name!r} does not exist")
            partitions, config, stores, _identity = entry
            check_partition_increase(name, partitions, count)
            stores = stores + [MemoryPartitionStore() for _ in range(partitions, count)]
            self.topics[name] = (count, config, stores, next(self._identities))
            return partitions

    def alter_config(self, name: str, change: Callable[[dict[str, str]], dict[str, str]]
                     ) -> None:
        """Replace ``name``'s config with ``change(config)``."""
        with self.lock:
            entry = self.topics.get(name)
            if entry is None:
                raise UnknownTopic(f"topic {name!r} does not exist")
            self.write_topic(name, entry[0], change(entry[1]), replace=True)

    def orphan_topics(self) -> list[str]:
        return []

    def delete_topic(self, name: str) -> None:
        with self.lock:
            entry = self.topics.pop(name, None)
        if entry is None:
            raise UnknownTopic(f"topic {name!r} does not exist")
        for store in entry[2]:
            store.mark_deleted()

    def list_topics(self) -> list[str]:
        return sorted(self.topics)

    def partition_store(self, name: str, partition: int) -> MemoryPartitionStore:
        return self.topics[name][2][partition]
