"""``VersionedTable``: a table that keeps each key's history (Kafka Streams' KIP-914).

``app.Table("prices", versioned=timedelta(hours=1))`` keeps, for each key, its
**versions**: ``(valid-from timestamp, value)``, a value being valid from its timestamp
until the next version's. A delete (``del table[k]``, or writing ``None``, Kafka's
tombstone) is a version too: reads inside a deleted interval find nothing.

- ``table[key]``, ``get``, ``in``, ``items()``, the web views and ``streamkit table``
  read the **latest** version (the largest timestamp), so the table reads like any
  other; ``table.as_of(key, when)`` reads the version valid at ``when``, and
  ``stream.join(table, as_of=True)`` the version valid at each event's timestamp.
- A write's timestamp is the timestamp of the event being processed (the message's,
  as windows use it); outside an event (a timer) it is the wall clock. Writes may come
  out of order: one older than the latest goes into the history and does not become
  the latest.
- **Stream time** (per partition): the largest write timestamp seen. History more than
  the retention behind it may be dropped: a write older than that is dropped and
  counted (``late_writes``, and ``late_events`` in the monitor), and ``as_of`` a time
  older than that gives nothing, unless the latest version is older still (it is
  valid then, and always kept, as in KIP-914). Older versions are dropped when their
  key is written; a key whose latest version is a delete older than the retention
  leaves the table at the next commit (a tombstone in its changelog).

The stored value of a key is its whole version list, ``[[ms, value], ...]`` in time
order (``null`` for a delete), the values as the table's JSON value codec writes them
(decision 050): the changelog, the commit and the restore of ``Table`` keep it unchanged,
so a restored table has its history back. Stream time is kept in the changelog too,
under a bookkeeping key, and read back on restore; the keys whose latest version is a
delete are found again then from the stored bytes (no value is decoded).
"""
from __future__ import annotations

import bisect
import heapq
import itertools
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import msgspec

from streamkit.errors import ImproperlyConfigured
from streamkit.serializers import Serde
from streamkit.serializers.codecs import JSONCodec
from streamkit.streams.event import current_stream
from streamkit.tables import changelog
from streamkit.tables.context import TableContext
from streamkit.tables.table import _DELETED, Table
from streamkit.tables.windowed import to_seconds
from streamkit.types import TopicPartition

#: the changelog and store key of a partition's stream time (not valid JSON, so no
#: table key encodes to it; readers skip keys starting with a zero byte)
TIME_KEY = b"\x00streamkit.versioned.time"
#: stream time of a partition nothing was written to
_NEVER = -(1 << 62)
#: the stream of the running agent task, None outside one
_stream_now = current_stream.get
#: how a stored version list ends when its latest version is a delete (a JSON value
#: ends with ``null`` only if it is ``null``, which is how a delete is written)
_ENDS_DELETED = b",null]]"

_decode_versions = msgspec.json.Decoder(list[tuple[int, msgspec.Raw]]).decode


class VersionsCodec:
    """A key's versions as a JSON array of ``[timestamp ms, value]`` pairs, each value
    the bytes the table's own value codec writes (``null``: deleted)."""

    def __init__(self, value_serde: Serde) -> None:
        self._dump = changelog.encoder(value_serde)
        self._load = value_serde.loads

    def dumps(self, versions: list[list[Any]]) -> bytes:
        dump = self._dump
        return b"[%s]" % b",".join(
            b"[%d,%s]" % (ts, b"null" if value is None else dump(value))
            for ts, value in versions)

    def loads(self, data: bytes) -> list[list[Any]]:
        load = self._load
        versions = []
        for ts, raw in _decode_versions(data):
            value = bytes(raw)
            versions.append([ts, None if value == b"null" else load(value)])
        return versions


class VersionedTable(Table):
    """See the module docstring. Declared by ``app.Table(name, versioned=...)``."""

    def __init__(self, name: str, *, versioned: Any, context: TableContext,
                 **options: Any) -> None:
        retention_ms = _retention_ms(name, versioned)
        super().__init__(name, context=context, **options)
        if not isinstance(self.value_serde.codec, JSONCodec):
            raise ImproperlyConfigured(
                f"table {name!r}: a versioned table stores its values as JSON; "
                f"value_serializer={self.value_serde.serializer!r} is not supported "
                "(leave it out, or use 'json')")
        #: how long behind stream time history is kept, in milliseconds
        self.history_retention_ms = retention_ms
        #: the table's own codec of one value (``value_serde`` encodes version lists)
        self.version_serde = self.value_serde
        self.value_serde = Serde(None, VersionsCodec(self.version_serde))
        self._json_int_values = False
        self._dump_value = self.value_serde.dumps
        #: per partition: the largest write timestamp seen (ms), and what the
        #: changelog has of it
        self._stream_time: dict[int, int] = {}
        self._time_flushed: dict[int, int] = {}
        #: per partition: (timestamp ms, n, key) of the keys whose latest version is
        #: a delete, earliest first: they leave the table once the retention passes it
        self._deletes: dict[int, list[tuple[int, int, Any]]] = {}
        self._pushed = itertools.count()
        #: writes dropped because they were older than the retention allows
        self.late_writes = 0

    def __repr__(self) -> str:
        return f"<VersionedTable {self.name}>"

    @property
    def versioned(self) -> timedelta:
        """How long each key's history is kept behind the table's stream time."""
        return timedelta(milliseconds=self.history_retention_ms)

    def _windowed(self, window: Any, expires_after_close: Any = None) -> Any:
        raise ImproperlyConfigured(f"table {self.name!r}: a versioned table cannot be "
                                   "windowed (declare it without versioned=)")

    # -- reading: the latest version ----------------------------------------------------
    def _latest(self, key: Any) -> Any:
        versions = self._find(key)
        if versions is _DELETED:
            return _DELETED
        value = versions[-1][1]
        return _DELETED if value is None else value

    def __getitem__(self, key: Any) -> Any:
        value = self._latest(key)
        if value is not _DELETED:
            return value
        if self.default is None:
            raise KeyError(key)
        return self.default()

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._latest(key)
        return default if value is _DELETED else value

    def __contains__(self, key: Any) -> bool:
        return self._latest(key) is not _DELETED

    def peek(self, key: Any, default: Any = None) -> Any:
        versions = super().peek(key, None)
        if not versions or versions[-1][1] is None:
            return default
        return versions[-1][1]

    def items(self) -> Iterator[tuple[Any, Any]]:
        for key, versions in super().items():
            value = versions[-1][1]
            if value is not None:
                yield key, value

    def load_value(self, raw: bytes) -> Any:
        versions = self.value_serde.loads(raw)
        value = versions[-1][1] if versions else None
        return _DELETED if value is None else value

    # -- reading: history ---------------------------------------------------------------
    def as_of(self, key: Any, when: Any, default: Any = None) -> Any:
        """The value of ``key`` valid at ``when`` (epoch seconds, a datetime, naive
        meaning UTC, or an ISO-8601 string): the version with the largest timestamp
        at or before it. ``default`` when there is none, when the key was deleted
        then, or when ``when`` is older than the history kept (KIP-914's null) and
        the latest version is later than ``when``."""
        return self.get_as_of(key, round(to_seconds(when) * 1000), default)

    def get_as_of(self, key: Any, timestamp_ms: int, default: Any = None) -> Any:
        """``as_of`` with the time in milliseconds, as message timestamps are (what a
        stream-table join with ``as_of=True`` calls)."""
        partition = self._partition()
        if partition is None:
            partition = self._partition_holding(key)
            if partition is None:
                return default
        versions = self._lookup(partition, key)
        if versions is _DELETED:
            return default
        if versions[-1][0] <= timestamp_ms:
            value = versions[-1][1]     # the latest, however old the time asked for
        elif timestamp_ms < self._stream_time.get(partition, _NEVER) - \
                self.history_retention_ms:
            return default              # older than the history kept
        else:
            i = bisect.bisect_right(versions, timestamp_ms, key=_timestamp)
            value = versions[i - 1][1] if i else None
        return default if value is None else value

    def history(self, key: Any) -> list[tuple[float, Any]]:
        """The versions this worker keeps for ``key``, oldest first: ``(timestamp in
        seconds, value)``, the value None for a delete."""
        versions = self._find(key)
        if versions is _DELETED:
            return []
        return [(ts / 1000.0, value) for ts, value in versions]

    def stream_time(self, partition: int) -> float | None:
        """The largest write timestamp (seconds) seen in ``partition``, if any."""
        ts = self._stream_time.get(partition)
        return None if ts is None else ts / 1000.0

    # -- writing: a new version ---------------------------------------------------------
    def __setitem__(self, key: Any, value: Any) -> None:
        self._write(key, value)

    def _write(self, key: Any, value: Any) -> None:
        partition = self._partition()
        if partition is None:
            partition = self._partition_holding(key)
            if partition is None:
                partition = self._partition_of_key(key)
        self._put(partition, key, value, _write_time_ms())

    def _put(self, partition: int, key: Any, value: Any, ts: int) -> None:
        """Add the version ``(ts, value)`` of ``key`` (``None`` or ``_DELETED``: a
        delete), replacing one at the same timestamp, then drop what the retention no
        longer needs."""
        if partition not in self._cache and self._given_up(partition):
            return
        stream_time = self._stream_time.get(partition, _NEVER)
        retention = self.history_retention_ms
        if ts < stream_time - retention:
            self.late_writes += 1
            self.context.monitor.on_late_event(self.name)
            return
        found = self._lookup(partition, key)
        versions: list[list[Any]] = [] if found is _DELETED else found
        entry = [ts, None if value is _DELETED else value]
        if not versions or versions[-1][0] < ts:
            versions.append(entry)            # in order: the new latest
        else:
            i = bisect.bisect_right(versions, ts, key=_timestamp)
            if i and versions[i - 1][0] == ts:
                versions[i - 1] = entry
            else:
                versions.insert(i, entry)
        if ts > stream_time:
            stream_time = self._stream_time[partition] = ts
        floor = stream_time - retention
        if versions[0][0] <= floor:
            versions = _trim(versions, floor)
        if versions and versions[-1][1] is None and versions[-1][0] == ts:
            heapq.heappush(self._deletes.setdefault(partition, []),
                           (ts, next(self._pushed), key))
        self._write_at(partition, key, versions if versions else _DELETED)

    def _expire_deletes(self) -> None:
        """Delete the keys whose latest version is a delete older than the retention
        (nothing is valid after it, and no write can go before it any more): their
        changelog record becomes a tombstone, which compaction removes."""
        retention = self.history_retention_ms
        for partition, waiting in self._deletes.items():
            floor = self._stream_time.get(partition, _NEVER) - retention
            if not waiting or waiting[0][0] > floor:
                continue
            cache = self._cache_of(partition)
            dirty = self._dirty[partition]
            while waiting and waiting[0][0] <= floor:
                key = heapq.heappop(waiting)[2]
                versions = self._lookup(partition, key)
                if versions is not _DELETED and versions[-1][1] is None and \
                        versions[-1][0] <= floor:
                    cache[key] = _DELETED
                    dirty.add(key)

    # -- stream time: kept in the changelog, read back on restore -----------------------
    def flush(self) -> None:
        self._expire_deletes()
        flushed = self._time_flushed
        for partition, ts in self._stream_time.items():
            if flushed.get(partition) != ts:
                flushed[partition] = ts
                self._extra_changes.setdefault(partition, []).append(
                    (TIME_KEY, b"%d" % ts))
        super().flush()

    def restore(self, partition: int) -> int:
        applied = super().restore(partition)
        self._load_stream_time(partition)
        self._index_deletes(partition)
        return applied

    def _index_deletes(self, partition: int) -> None:
        """Find the keys of a restored partition whose latest version is a delete,
        from the stored bytes alone (no value is decoded)."""
        waiting = self._deletes[partition] = []
        load_key = self.load_key
        for raw_key, raw in self._store_of(partition).items(partition):
            if raw.endswith(_ENDS_DELETED) and raw_key[:1] != b"\x00":
                ts = int(raw[raw.rindex(b"[") + 1:-len(_ENDS_DELETED)])
                waiting.append((ts, next(self._pushed), load_key(raw_key)))
        heapq.heapify(waiting)

    def _load_stream_time(self, partition: int) -> None:
        raw = self._store_of(partition).get(partition, TIME_KEY)
        if raw is None:
            self._stream_time.pop(partition, None)
            self._time_flushed.pop(partition, None)
        else:
            self._stream_time[partition] = self._time_flushed[partition] = int(raw)

    def discard_uncommitted(self) -> None:
        super().discard_uncommitted()
        for partition in list(self._stream_time):
            self._load_stream_time(partition)
        for partition in list(self._deletes):
            self._index_deletes(partition)     # (as the stores have them)

    def on_partitions_revoked(self, tps: list[TopicPartition],
                              assigned: set[TopicPartition] | None = None) -> None:
        super().on_partitions_revoked(tps, assigned)
        for partition in list(self._stream_time):
            if partition not in self._active:
                del self._stream_time[partition]
                self._time_flushed.pop(partition, None)
        for partition in list(self._deletes):
            if partition not in self._active:
                del self._deletes[partition]

    def close(self) -> None:
        super().close()
        self._stream_time.clear()
        self._time_flushed.clear()
        self._deletes.clear()


def _trim(versions: list[list[Any]], floor: int) -> list[list[Any]]:
    """``versions`` without those no read or write at or after ``floor`` can need: the
    ones that ended by then (the next one starts at or before it), and a delete
    valid at ``floor`` (it says no more than having no version)."""
    start = 0
    last = len(versions) - 1
    while start < last and versions[start + 1][0] <= floor:
        start += 1
    if versions[start][1] is None and versions[start][0] <= floor:
        start += 1
    return versions[start:] if start else versions


def _timestamp(version: list[Any]) -> int:
    return version[0]


def _write_time_ms() -> int:
    """The timestamp of the event being processed (ms), else the wall clock's."""
    stream = _stream_now()
    try:
        return stream.batch.messages[stream.cursor].timestamp  # type: ignore[union-attr]
    except AttributeError:      # no stream, or no batch in hand: not in an event
        return int(time.time() * 1000)
    except IndexError:          # past the batch's last event (``batches()``)
        messages = stream.batch.messages  # type: ignore[union-attr]
        return messages[-1].timestamp if messages else int(time.time() * 1000)


def _retention_ms(name: str, versioned: Any) -> int:
    """``versioned=`` (a timedelta or seconds) as whole milliseconds above zero."""
    if isinstance(versioned, timedelta):
        seconds = versioned.total_seconds()
    elif isinstance(versioned, (int, float)) and not isinstance(versioned, bool):
        seconds = float(versioned)
    else:
        raise ImproperlyConfigured(
            f"table {name!r}: versioned={versioned!r} must say how long to keep each "
            "key's history: a timedelta or seconds, e.g. versioned=timedelta(hours=1)")
    if seconds * 1000 < 1:
        raise ImproperlyConfigured(
            f"table {name!r}: versioned={versioned!r} must be at least a millisecond")
    return round(seconds * 1000)
