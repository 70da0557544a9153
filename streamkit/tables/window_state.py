"""What a windowed table knows per partition besides its values: stream time, which
windows are open, when they close and expire, and the close watermark it keeps in the
changelog.

Stream time, per partition, is the largest event time the table has seen. A window
closes when stream time reaches its ``closes_at`` (``end + grace`` for tumbling and
hopping windows): ``on_window_close(key, value)`` is called once with its final value.
Windows are deleted once stream time passes their expiry. The partition's close
watermark and stream time are written to the changelog with the table's changes, so a
restarted worker neither closes a window twice nor forgets one
(docs/decisions/302-window-time-rules.md). ``WindowWrapper``
(``streamkit.tables.windowed``) adds the dict-like API and the updates.
"""
from __future__ import annotations

import heapq
import inspect
import itertools
import logging
from typing import TYPE_CHECKING, Any

import msgpack

from streamkit.tables.table import _DELETED, _hashable
from streamkit.windows import SessionWindow, SlidingWindow

if TYPE_CHECKING:
    from streamkit.tables.table import Table

logger = logging.getLogger("streamkit.tables")

#: the changelog key that holds a partition's close watermark (not valid JSON, so no
#: user key can collide with it)
WATERMARK_KEY = b"\x00streamkit.window.closed"
#: prefix of the changelog keys holding, per key of a sliding-window table, the latest
#: record time of each of its windows (what the next update needs after a restart)
SLIDING_PREFIX = b"\x00streamkit.sliding:"

Range = tuple[float, float]


class WindowState:
    """Per partition: stream time, the open windows and their keys, and the windows
    to close and to expire, in stream-time order."""

    def __init__(self, table: Table, window: Any) -> None:
        self.table = table
        self.window = window
        #: sliding and session windows: seconds after closing that a window is deleted
        self.expires_after_close: float | None = None
        #: tumbling and hopping windows (``closes_at`` is all ``is_closed`` looks at)
        self._aligned = not isinstance(window, (SessionWindow, SlidingWindow))
        self.reset()

    def reset(self) -> None:
        """Forget all window state (a new test context, a fresh start)."""
        self.stream_time: dict[int, float] = {}
        #: the stream time last written to the changelog, per partition
        self._time_flushed: dict[int, float] = {}
        #: sliding windows: keys whose windows' latest record times changed
        self._sliding_dirty: dict[int, set[Any]] = {}
        self.closed_through: dict[int, float] = {}
        self._watermark_dirty: set[int] = set()
        self._open: dict[int, dict[Range, set[Any]]] = {}
        self._close_heap: dict[int, list[tuple[float, Range]]] = {}
        #: per partition: (expires_at, sequence, window, its keys closed with a value);
        #: the sequence orders windows expiring together (keys of mixed types do not
        #: compare)
        self._expiry_heap: dict[int, list[tuple[float, int, Range, list[Any]]]] = {}
        self._expiry_sequence = itertools.count()
        self._sessions: dict[int, dict[Any, list[Range]]] = {}
        self._sliding: dict[int, dict[Any, dict[Range, float]]] = {}
        self.late_events = 0
        self.closed_windows = 0
        self._forget_batch()

    def _forget_batch(self) -> None:
        """Forget the partition of the batch the agent is in (the wrapper's per-event
        path keeps it)."""
        #: that partition, its stream time (-inf before the first event), and the
        #: stream time at which it has a window to close or expire next
        self._partition = -1
        self._top = float("-inf")
        self._due = float("inf")
        #: the open keys of its last tumbling window, and the keys written in that
        #: window since the batch was prepared (with their stored keys)
        self._last_keys: set[Any] | None = None
        self._written: dict[Any, Any] = {}

    def _count_late(self) -> None:
        self.late_events += 1
        self.table.context.monitor.on_late_event(self.table.name)

    # -- closing and expiring --------------------------------------------------------------
    def _track_open(self, partition: int, rng: Range, key: Any) -> None:
        open_windows = self._open.setdefault(partition, {})
        keys = open_windows.get(rng)
        if keys is None:
            keys = open_windows[rng] = set()
            closes_at = self.window.closes_at(rng)
            heapq.heappush(self._close_heap.setdefault(partition, []), (closes_at, rng))
            if partition == self._partition and closes_at < self._due:
                self._due = closes_at
        keys.add(key)

    def _forget_open(self, partition: int, rng: Range, key: Any) -> None:
        keys = self._open.get(partition, {}).get(rng)
        if keys is not None:
            keys.discard(key)

    def _advance(self, partition: int, ts: float) -> None:
        """Stream time of ``partition`` moves up to ``ts`` (the caller checked that it
        is later, or the first): close and expire the windows that are due."""
        self.stream_time[partition] = ts
        if partition == self._partition:
            self._top = ts
        heap = self._close_heap.get(partition)
        if heap and heap[0][0] <= ts:
            self._close_due(partition)
        expiring = self._expiry_heap.get(partition)
        if expiring and expiring[0][0] <= ts:
            self._expire_due(partition)

    def close_due_windows(self) -> None:
        """Close every window whose time has come (after each test-context event)."""
        for partition in list(self._close_heap):
            self._close_due(partition)

    def _close_due(self, partition: int) -> None:
        stream_time = self.stream_time.get(partition)
        heap = self._close_heap.get(partition)
        if stream_time is None or not heap:
            return
        window, lookup = self.window, self.table._lookup
        calls_back = self.table.on_window_close is not None
        open_windows = self._open.setdefault(partition, {})
        aligned = self._aligned   # (is_closed is closes_at <= stream time: in the heap)
        while heap and (heap[0][0] <= stream_time if aligned
                        else window.is_closed(heap[0][1], stream_time)):
            closes_at, rng = heapq.heappop(heap)
            closed = []
            # (in a stable order for on_window_close: keys need not compare)
            for key in sorted(open_windows.pop(rng, ()), key=repr) if calls_back \
                    else open_windows.pop(rng, ()):
                value = lookup(partition, (key, rng))
                if value is _DELETED:
                    continue
                closed.append(key)
                if calls_back:
                    self._call_on_close((key, rng), value)
            self.closed_windows += len(closed)
            self._expire_later(partition, rng, closed)
            if closes_at > self.closed_through.get(partition, float("-inf")):
                self.closed_through[partition] = closes_at
            self._watermark_dirty.add(partition)
        if isinstance(window, SessionWindow):
            self._drop_closed_sessions(partition, stream_time)
        if partition == self._partition:
            self._due = self._next_due(partition)
            self._last_keys = None   # (its window may be closed: its set is gone)
            self._written = {}

    def _drop_closed_sessions(self, partition: int, stream_time: float) -> None:
        # a closed session is kept while a record that is not late could still reach
        # it (the record is then late: docs/decisions/302-window-time-rules.md)
        window = self.window
        horizon = stream_time - 2 * window.gap - window.grace
        for sessions in self._sessions.get(partition, {}).values():
            sessions[:] = [s for s in sessions if s[1] >= horizon]

    def _expires_at(self, rng: Range) -> float | None:
        if self.expires_after_close is not None:
            return float(self.window.closes_at(rng) + self.expires_after_close)
        if isinstance(self.window, (SessionWindow, SlidingWindow)):
            return None
        expires: float | None = self.window.expires_at(rng)
        return expires

    def _expire_later(self, partition: int, rng: Range, keys: list[Any]) -> None:
        """Delete ``keys`` of the closed window ``rng`` when it expires, if it does."""
        if keys:
            expires_at = self._expires_at(rng)
            if expires_at is not None:
                heapq.heappush(self._expiry_heap.setdefault(partition, []),
                               (expires_at, next(self._expiry_sequence), rng, keys))

    def _expire_due(self, partition: int) -> None:
        heap = self._expiry_heap[partition]
        stream_time = self.stream_time[partition]
        table = self.table
        while heap and heap[0][0] <= stream_time:
            _, _, rng, keys = heapq.heappop(heap)
            for key in keys:
                table._write_at(partition, (key, rng), _DELETED)
        if partition == self._partition:
            self._due = self._next_due(partition)

    def _call_on_close(self, key: Any, value: Any) -> None:
        callback = self.table.on_window_close
        if callback is None:
            return
        try:
            outcome = callback(key, value)
            if inspect.isawaitable(outcome):
                self.table.context.spawn(f"on_window_close {self.table.name}",
                                     _await, outcome)
        except Exception:
            logger.exception("on_window_close of table %s raised for %r", self.table.name,
                             key)

    # -- persistence hooks (called by the table) --------------------------------------------
    def before_flush(self) -> None:
        """Write each partition's close watermark and stream time to the changelog
        when they moved, with the table's changes."""
        flushed = self._time_flushed
        for partition, stream_time in self.stream_time.items():
            if (partition in self._watermark_dirty
                    or flushed.get(partition) != stream_time):
                flushed[partition] = stream_time
                closed = self.closed_through.get(partition)
                self.table._extra_changes.setdefault(partition, []).append(
                    (WATERMARK_KEY, msgpack.packb([closed, stream_time])))
        self._watermark_dirty.clear()
        dump_key = self.table._dump_key
        for partition, keys in self._sliding_dirty.items():
            known = self._sliding.get(partition, {})
            changes = self.table._extra_changes.setdefault(partition, [])
            for key in keys:
                times = [[s, e, m] for (s, e), m in known.get(key, {}).items()]
                changes.append((SLIDING_PREFIX + dump_key(key), msgpack.packb(times)))
        self._sliding_dirty.clear()

    def _restore_sliding(self, partition: int) -> None:
        store = self.table._store_of(partition)
        load_key = self.table.key_serde.loads
        sliding = self._sliding.setdefault(partition, {})
        for raw_key, raw_value in store.items(partition):
            if raw_key.startswith(SLIDING_PREFIX):
                key = _hashable(load_key(raw_key[len(SLIDING_PREFIX):]))
                sliding[key] = {(s, e): m for s, e, m in msgpack.unpackb(raw_value)}

    def on_restored(self, partition: int) -> None:
        """Rebuild stream time and which windows are open from the store after a
        restore."""
        table = self.table
        raw = table._store_of(partition).get(partition, WATERMARK_KEY)
        watermark = stream_time = None
        if raw is not None:
            stored = msgpack.unpackb(raw)
            watermark, stream_time = stored if isinstance(stored, list) else (stored,
                                                                               stored)
        self._forget_batch()
        self._open.pop(partition, None)
        self._close_heap.pop(partition, None)
        self._expiry_heap.pop(partition, None)
        self._sessions.pop(partition, None)
        self._sliding.pop(partition, None)
        if watermark is not None:
            self.closed_through[partition] = watermark
        if stream_time is not None:
            self.stream_time[partition] = self._time_flushed[partition] = stream_time
        session = isinstance(self.window, SessionWindow)
        closed: dict[Range, list[Any]] = {}
        for (key, rng), _value in table._partition_items(partition):
            rng = (rng[0], rng[1])
            if session:  # closed sessions too: a record that would join one is late
                self._sessions.setdefault(partition, {}).setdefault(key, []).append(rng)
            closes_at = self.window.closes_at(rng)
            if watermark is not None and closes_at <= watermark:
                closed.setdefault(rng, []).append(key)
                continue
            self._track_open(partition, rng, key)
        for rng, keys in closed.items():
            self._expire_later(partition, rng, keys)
        if isinstance(self.window, SlidingWindow):
            self._restore_sliding(partition)

    def newest_window(self, key: Any) -> tuple[Range, Any] | None:
        """The newest window (the latest start) this worker holds for ``key``, and its
        value; None if it holds none.

        A key's newest window is open if any of its windows is (windows of a key close
        in start order), so the open windows are looked at first, then the closed ones
        waiting to expire; only a table whose closed windows never expire is scanned."""
        table = self.table
        found: list[tuple[Range, int]] = [
            (rng, partition) for partition, windows in self._open.items()
            for rng, keys in windows.items() if key in keys]
        if not found:
            found = [(rng, partition) for partition, heap in self._expiry_heap.items()
                     for _, _, rng, keys in heap if key in keys]
        for rng, partition in sorted(found, key=lambda item: item[0], reverse=True):
            value = table._lookup(partition, (key, rng))
            if value is not _DELETED:
                return rng, value
        if self._closed_windows_expire():
            return None
        held = [(rng, value) for (k, rng), value in table.items() if k == key]
        return max(held, key=lambda item: item[0]) if held else None

    def _closed_windows_expire(self) -> bool:
        """Whether every closed window is deleted some day (and waits in the expiry
        heap until then)."""
        if self.expires_after_close is not None:
            return True
        return self._aligned and self.window.expires is not None

    async def run_background(self) -> None:
        """Nothing periodic: windows close on stream time, as events arrive."""

    def _next_due(self, partition: int) -> float:
        """The stream time at which ``partition`` next has a window to close or
        expire (inf: none)."""
        due = float("inf")
        heap = self._close_heap.get(partition)
        if heap:
            due = heap[0][0]
        expiring = self._expiry_heap.get(partition)
        if expiring and expiring[0][0] < due:
            due = expiring[0][0]
        return due


async def _await(awaitable: Any) -> None:
    await awaitable
