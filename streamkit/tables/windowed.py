"""Windowed tables: ``app.Table(...).tumbling(60)[key] += 1``.

Stored keys are ``(key, (start, end))``. Which timestamp places an event in windows is
chosen by ``relative_to_stream()`` (the message timestamp, the default),
``relative_to_now()`` (the wall clock) or ``relative_to_field(Record.field)``.

Stream time, per partition, is the largest such timestamp the table has seen. A window
closes when stream time reaches ``end + grace``: ``on_window_close(key, value)`` is
called once with its final value, and later events for it are dropped and counted as
late (``streamkit.tables.window_state`` keeps stream time, closing and expiry).

Events come in batches: the update of a tumbling or hopping window takes what is the
same for a whole batch (stream time, its next closing, the times of its events) once
per batch; a tumbling update also keeps the partition's cache and the window of the
previous event while events stay in it (a hopping update still looks up the
partition's cache per event). That
per-event path is ``WindowSet.__iadd__`` itself (``streamkit.tables.window_set``;
``table[key] += 1`` calls nothing else); the other operators and ``table[key] = v`` go
through it with their operator.
"""
from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterator
from datetime import datetime, UTC
from typing import TYPE_CHECKING, Any

from streamkit.streams.event import current_stream
from streamkit.tables.table import _DELETED
from streamkit.tables.window_set import WindowSet, message_time, message_times
from streamkit.tables.window_state import Range, WindowState
from streamkit.terminal import ansitable
from streamkit.windows import SessionWindow, SlidingWindow, TumblingWindow

if TYPE_CHECKING:
    from streamkit.tables.table import Table

__all__ = ["WindowSet", "WindowWrapper", "to_seconds"]

_MISSING: Any = object()
#: WindowSets kept for the keys last used (``WindowWrapper.__getitem__``)
_MAX_WINDOW_SETS = 10_000
#: batches whose event times are kept (more than one: agents sharing a table take
#: turns between their batches)
_KEPT_BATCHES = 4


def to_seconds(value: Any) -> float:
    """A timestamp from a datetime (naive means UTC), an ISO-8601 string, or epoch
    seconds."""
    if type(value) is datetime:
        if value.tzinfo is None:
            return (value - _EPOCH).total_seconds()
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    when = datetime.fromisoformat(value.replace("Z", "+00:00")) \
        if isinstance(value, str) else value
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    raise TypeError(f"cannot use {value!r} as a window timestamp")


_EPOCH = datetime(1970, 1, 1)


class WindowWrapper(WindowState):
    """The windowed view of a table; ``wrapper[key]`` is a ``WindowSet``."""

    def __init__(self, table: Table, window: Any) -> None:
        self._event_time: Callable[[Any, Any], float] = message_time
        #: the times of a whole batch's events at once, where they are a pure function
        #: of the event (None: ``_event_time`` per event)
        self._batch_time: Callable[[Any], list[float]] | None = message_times
        self.relative_to_name = "stream"
        self._tumbling = type(window) is TumblingWindow
        #: the WindowSet of each key (``wrapper[key]``), made once
        self._sets: dict[Any, WindowSet] = {}
        super().__init__(table, window)

    def reset(self) -> None:
        """Forget all window state (a new test context, a fresh start)."""
        #: closes_at of each window range seen (computed once per range)
        self._closes_at: dict[Range, float] = {}
        #: tumbling windows: the last window an event fell in and its closes_at; the
        #: next event is most often in it too (a timestamp in ``[start, end)`` is in
        #: that window and no other)
        self._last: Range = (0.0, 0.0)
        self._last_close = 0.0
        super().reset()

    def _forget_batch(self) -> None:
        """Drop the state of the batch the agent is in (``_prepare`` makes it again)."""
        super()._forget_batch()
        #: the batch the per-event path is prepared for (None: not prepared)
        self._batch: Any = None
        #: the event times of the batches last prepared (None: computed per event):
        #: agents taking turns each keep theirs
        self._batch_times: dict[Any, list[float] | None] = {}
        self._times: list[float] | None = None
        self._size = 0

    def _times_changed(self) -> None:
        """Forget the event times taken the way the table took them before."""
        self._batch = None
        self._batch_times = {}

    def __repr__(self) -> str:
        return f"<WindowWrapper {self.table.name} {self.window!r}>"

    @property
    def name(self) -> str:
        return self.table.name

    # -- which time --------------------------------------------------------------------
    def relative_to_stream(self) -> WindowWrapper:
        """Windows by message timestamp: event time if the producer set it, ingestion
        time on a LogAppendTime topic (or the topic's timestamp_extractor)."""
        self._event_time = message_time
        self._batch_time = message_times
        self._times_changed()
        self.relative_to_name = "stream"
        return self

    def relative_to_now(self) -> WindowWrapper:
        """Windows by the wall clock when the event is processed."""
        self._event_time = lambda message, value: time.time()
        self._batch_time = None
        self._times_changed()
        self.relative_to_name = "now"
        return self

    def relative_to_field(self, field: Any) -> WindowWrapper:
        """Windows by a field of the value (datetime, ISO string or epoch seconds)."""
        name = getattr(field, "field", field)
        get = operator.attrgetter(name)

        def field_time(message: Any, value: Any) -> float:
            # naive datetimes (the usual Record field) without the to_seconds call
            ts = get(value)
            if type(ts) is datetime and ts.tzinfo is None:
                return (ts - _EPOCH).total_seconds()
            return to_seconds(ts)

        def field_times(batch: Any) -> list[float]:
            try:    # (an aware datetime does not subtract from the naive epoch)
                return [(ts - _EPOCH).total_seconds() if type(ts) is datetime
                        else to_seconds(ts) for ts in map(get, batch.values)]
            except TypeError:
                return [to_seconds(ts) for ts in map(get, batch.values)]
        self._event_time = field_time
        self._batch_time = field_times
        self._times_changed()
        self.relative_to_name = f"field {name}"
        return self

    def relative_to(self, timestamp_of: Callable[[Any], Any]) -> WindowWrapper:
        """Windows by ``timestamp_of(value)``."""
        self._event_time = lambda message, value: to_seconds(timestamp_of(value))
        self._batch_time = None   # (called for the events that update the table only)
        self._times_changed()
        self.relative_to_name = getattr(timestamp_of, "__name__", "function")
        return self

    def _current(self) -> tuple[int, Any, Any] | None:
        stream = current_stream.get()
        if stream is None or stream.batch is None:
            return None
        batch, i = stream.batch, stream.cursor
        if i >= len(batch.values):
            return None
        return batch.tp.partition, batch.messages[i], batch.values[i]

    # -- dict-like -----------------------------------------------------------------------
    def __getitem__(self, key: Any) -> WindowSet:
        sets = self._sets
        try:
            window_set = sets.get(key)
        except TypeError:       # unhashable: fails where it is used, as a window key
            return WindowSet(self, key)
        # (an equal key of another type, 1 and 1.0 or True, gets its own WindowSet:
        # the key written is the one the agent gave)
        if window_set is None or type(window_set.key) is not type(key):
            window_set = WindowSet(self, key)
            if len(sets) < _MAX_WINDOW_SETS:    # (ids, every key new: not kept)
                sets[key] = window_set
        return window_set

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, WindowSet):
            return  # `wrapper[k] += 1` stores through the WindowSet already
        self._update(key, lambda current, operand: operand, value)

    def keys(self) -> Iterator[Any]:
        return (k for k, _ in self.items())

    def items(self) -> Iterator[tuple[Any, Any]]:
        """(key, value of the key's latest window) for every key held."""
        latest: dict[Any, tuple[Range, Any]] = {}
        for (key, window), value in self.table.items():
            seen = latest.get(key)
            if seen is None or window > seen[0]:
                latest[key] = (window, value)
        return ((k, v) for k, (_, v) in latest.items())

    def values(self) -> Iterator[Any]:
        return (v for _, v in self.items())

    def as_ansitable(self, title: str = "{table.name}", *, key: str = "Key",
                     value: str = "Value", sort: bool = False,
                     sortkey: Callable[[Any], Any] = operator.itemgetter(0), target: Any = None
                     ) -> str:
        """``items()`` (each key's latest window) as a text table (Faust's)."""
        return ansitable(self.items(), title.format(table=self.table), key=key,
                         value=value, sort=sort, sortkey=sortkey)

    def windows(self, key: Any) -> list[tuple[Range, Any]]:
        """Every window held for ``key``, oldest first, with its value."""
        return sorted((w, v) for (k, w), v in self.table.items() if k == key)

    def __len__(self) -> int:
        return len(self.table)

    # -- updating ------------------------------------------------------------------------
    def _update(self, key: Any, op: Callable[[Any, Any], Any], operand: Any) -> None:
        """Apply ``op(value, operand)`` to ``key`` in the windows of the current event
        (``WindowSet.__iadd__`` has the per-event path)."""
        WindowSet(self, key).__iadd__(operand, op)

    def _write_first(self, key: Any, window: Range, op: Callable[[Any, Any], Any],
                     operand: Any) -> None:
        """Add ``operand`` to ``key`` in the (open) tumbling window ``window`` of the
        prepared partition, the first time since ``_prepare``: mark it changed and
        open, and remember it in ``_written`` for the key's next events."""
        stored_key = (key, window)
        table = self.table
        cache = table._hot_cache        # (the prepared batch's partition: table._hot)
        keys = self._last_keys
        if keys is None:
            keys = self._last_keys = self._open.get(self._partition, {}).get(window)
        value = cache.get(stored_key, _MISSING)
        if value is _MISSING or value is _DELETED:
            if len(table._hot_dirty) >= table._hot_limit:   # the cache grows: commit yet?
                table._check_dirty()
            if keys is not None and key in keys:
                value = self._value_at(self._partition, stored_key)
            else:
                # the store holds no value of a key missing from an open window's keys
                # (on_restored tracks every window key in the store): no lookup
                value = table.default() if table.default is not None else None
        cache[stored_key] = op(value, operand)
        table._hot_dirty.add(stored_key)
        if keys is None:
            self._track_open(self._partition, window, key)
            self._last_keys = self._open[self._partition][window]
        else:
            keys.add(key)
        self._written[key] = stored_key

    def _locate(self, ts: float) -> Range:
        """Make the tumbling window of ``ts`` the last one (``WindowSet.__iadd__``)."""
        window = self.window.ranges(ts)[0]
        self._last = window
        self._last_close = self._close_of(window)
        self._last_keys = self._open.get(self._partition, {}).get(window)
        self._written = {}
        return window

    def _prepare(self, batch: Any) -> bool:
        """Make ``batch`` the one the per-event path works in: its partition's cache,
        stream time and next closing, and (once per batch) its events' times. False
        where the per-event path does not apply (sliding and session windows; a
        partition without a cache yet, or not this worker's)."""
        table = self.table
        self._batch = None
        if not self._aligned:
            return False
        if batch is not table._hot_batch and table._hot(batch) is None:
            return False
        partition = batch.tp.partition
        times = self._batch_times.get(batch, _MISSING)
        if times is _MISSING:
            if len(self._batch_times) >= _KEPT_BATCHES:
                self._batch_times.clear()
            times = self._batch_times[batch] = self._times_of(batch)
        self._times = times
        self._size = len(batch.values)
        self._partition = partition
        # (the dirty set may be a new one since the last time: flushed meanwhile)
        self._last_keys = None
        self._written = {}
        self._top = self.stream_time.get(partition, float("-inf"))
        self._due = self._next_due(partition)
        self._batch = batch
        return True

    def _times_of(self, batch: Any) -> list[float] | None:
        """The window time of every event of ``batch``, in one pass; None when it is
        to be taken per event (the wall clock, a user's function, or a value the
        table's time cannot be read from: the error then comes from that event)."""
        batch_time = self._batch_time
        if batch_time is None:
            return None
        try:
            return batch_time(batch)
        except Exception:  # noqa: BLE001 - any: the event that updates the table raises it
            return None

    def _update_anywhere(self, key: Any, op: Callable[[Any, Any], Any],
                         operand: Any) -> None:
        """An update by any kind of window, from an event or not (a timer: the key's
        partition, at the wall clock)."""
        stream = current_stream.get()
        batch = stream.batch if stream is not None else None
        if batch is not None and stream.cursor < len(batch.values):  # type: ignore[union-attr]
            i = stream.cursor  # type: ignore[union-attr]
            partition = batch.tp.partition
            if batch is not self.table._hot_batch:
                self.table._hot(batch)   # once per batch: a commit when many changed
            ts = self._event_time(batch.messages[i], batch.values[i])
        else:
            partition, ts = self.table._partition_of_key(key), time.time()
        if partition not in self.table._cache and self.table._given_up(partition):
            return
        stream_time = self.stream_time.get(partition)
        if stream_time is None or ts > stream_time:
            self._advance(partition, ts)
            stream_time = ts
        window = self.window
        if isinstance(window, SessionWindow):
            self._update_session(partition, key, ts, op, operand)
        elif isinstance(window, SlidingWindow):
            self._update_sliding(partition, key, ts, op, operand)
        else:
            self._update_aligned(partition, key, ts, op, operand, stream_time)

    def _value_at(self, partition: int, stored_key: Any) -> Any:
        table = self.table
        value = table._lookup(partition, stored_key)
        if value is _DELETED:
            return table.default() if table.default is not None else None
        return value

    def _update_aligned(self, partition: int, key: Any, ts: float,
                        op: Callable[[Any, Any], Any], operand: Any,
                        stream_time: float) -> None:
        """Add ``operand`` to ``key`` in every window of ``ts`` still open (tumbling:
        one window; hopping: ``size / step`` of them)."""
        table = self.table
        cache = table._cache.get(partition)
        if cache is None:
            cache = table._cache_of(partition)
        dirty = table._dirty[partition]
        open_windows = self._open.get(partition)
        late = False
        for rng in self.window.ranges(ts):
            if stream_time >= self._close_of(rng):
                late = True
                continue
            stored_key = (key, rng)
            value = cache.get(stored_key, _MISSING)
            if value is _MISSING or value is _DELETED:
                if len(dirty) >= table._hot_limit:   # the cache grows: commit yet?
                    table._check_dirty()
                value = self._value_at(partition, stored_key)
            cache[stored_key] = op(value, operand)
            dirty.add(stored_key)
            keys = open_windows.get(rng) if open_windows is not None else None
            if keys is None:
                self._track_open(partition, rng, key)
                open_windows = self._open[partition]
            else:
                keys.add(key)
        if late:
            self._count_late()

    def _close_of(self, rng: Range) -> float:
        """``closes_at`` of a window range, computed once per range."""
        closes_at = self._closes_at
        close = closes_at.get(rng)
        if close is None:
            if len(closes_at) > 100_000:
                closes_at.clear()
            close = closes_at[rng] = self.window.closes_at(rng)
        return close

    def _update_session(self, partition: int, key: Any, ts: float,
                        op: Callable[[Any, Any], Any], operand: Any) -> None:
        window, table = self.window, self.table
        sessions = self._sessions.setdefault(partition, {}).setdefault(key, [])
        new, joined = window.merge(sessions, ts)
        if window.is_late(ts, joined, self.stream_time[partition]):
            self._count_late()
            return
        values = [self._value_at(partition, (key, s)) for s in joined]
        combined = values[0] if values else self._value_at(partition, (key, new))
        for extra in values[1:]:
            combined = combined + extra
        for old in joined:
            sessions.remove(old)
            if old != new:
                table._write_at(partition, (key, old), _DELETED)
                self._forget_open(partition, old, key)
        sessions.append(new)
        table._write_at(partition, (key, new), op(combined, operand))
        self._track_open(partition, new, key)

    def _update_sliding(self, partition: int, key: Any, ts: float,
                        op: Callable[[Any, Any], Any], operand: Any) -> None:
        window, table = self.window, self.table
        known = self._sliding.setdefault(partition, {}).setdefault(key, {})
        if len(known) > 32:
            # only windows starting within 2 sizes before a record matter to it
            # (docs/decisions/302), and a record older than stream time - size - grace
            # is late: forget windows no record can need any more
            horizon = self.stream_time[partition] - 3 * window.size - window.grace
            for rng in [r for r in known if r[0] < horizon]:
                del known[rng]
        update = window.update(known, ts, self.stream_time[partition])
        if update.late:
            self._count_late()
            return
        seeds = {seed: self._value_at(partition, (key, seed))
                 for _, seed in update.create if seed is not None}
        for rng, seed in update.create:
            start_value = seeds[seed] if seed is not None else self._value_at(
                partition, (key, rng))
            table._write_at(partition, (key, rng), start_value)
            self._track_open(partition, rng, key)
        for rng in update.add:
            stored_key = (key, rng)
            table._write_at(partition, stored_key,
                            op(self._value_at(partition, stored_key), operand))
            self._track_open(partition, rng, key)
        known.update(update.max_ts)
        self._sliding_dirty.setdefault(partition, set()).add(key)
