"""``WindowSet``: the windows of one key of a windowed table (``table[key]``).

``table[key] += 1`` goes through ``WindowSet.__iadd__``, the per-event path of windowed
updates (see ``streamkit.tables.windowed``). The reads pick one window: ``current()``
by the event's message timestamp, ``value()`` by the table's ``relative_to`` time,
``delta(s)`` that time minus ``s``, ``now()`` by the wall clock, ``latest()`` the newest
window held. The first three need an event: the one the agent is processing, or one
passed in; without it they raise ``NoCurrentEvent`` rather than guess a time
(docs/decisions/305-window-reads-outside-an-event.md).
"""
from __future__ import annotations

import operator
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streamkit.errors import NoCurrentEvent
from streamkit.streams.event import current_stream
from streamkit.tables.table import _DELETED

if TYPE_CHECKING:
    from streamkit.tables.windowed import WindowWrapper

__all__ = ["WindowSet", "message_time", "message_times"]

_MISSING: Any = object()
_add = operator.add


class WindowSet:
    """The windows of one key. ``+=`` and friends update every window the event's
    timestamp falls in; ``current()``, ``value()``, ``delta(s)`` read the window of an
    event's time, ``now()`` the wall clock's and ``latest()`` the newest one."""

    __slots__ = ("wrapper", "key")

    def __init__(self, wrapper: WindowWrapper, key: Any) -> None:
        self.wrapper = wrapper
        self.key = key

    def __repr__(self) -> str:
        return f"<WindowSet {self.wrapper.name}[{self.key!r}]>"

    def _read(self, ts: float) -> Any:
        wrapper = self.wrapper
        table = wrapper.table
        value = table.get((self.key, wrapper.window.current(ts)), _MISSING)
        if value is _MISSING:
            return table.default() if table.default is not None else None
        return value

    def _event_ts(self, relative: bool, event: Any, call: str, with_event: str) -> float:
        """The timestamp of ``event`` (or of the event the agent is processing): the
        table's ``relative_to`` time or (``relative=False``) the message timestamp."""
        wrapper = self.wrapper
        if event is not None:
            message, value = event.message, event.value
        else:
            current = wrapper._current()
            if current is None:
                if relative and wrapper.relative_to_name == "now":
                    return time.time()      # the table's time is the wall clock
                raise NoCurrentEvent(
                    f"{wrapper.name}[{self.key!r}].{call} reads the window of the current "
                    "event's time, and there is no current event here (a timer, a web "
                    "view, a task). Use .latest() for the key's newest window, .now() for "
                    f"the window of the wall clock, or pass an event: .{with_event}")
            _, message, value = current
        if relative:
            return float(wrapper._event_time(message, value))
        return message_time(message, value)

    def current(self, event: Any = None) -> Any:
        """The window of the event's message timestamp (as Faust's); for hopping
        windows the latest window holding it. The event is the one the agent is
        processing, or ``event``; without either it raises ``NoCurrentEvent``."""
        return self._read(self._event_ts(False, event, "current()", "current(event)"))

    def value(self, event: Any = None) -> Any:
        """The window of the timestamp the table's ``relative_to_*`` picks for the
        event (the wall clock for ``relative_to_now()``, event or not)."""
        return self._read(self._event_ts(True, event, "value()", "value(event)"))

    def now(self) -> Any:
        """The window of the wall clock."""
        return self._read(time.time())

    def delta(self, seconds: Any, event: Any = None) -> Any:
        """The window of the event's ``relative_to`` timestamp minus ``seconds``."""
        from streamkit.windows import want_seconds
        ts = self._event_ts(True, event, f"delta({seconds!r})", f"delta({seconds!r}, event)")
        return self._read(ts - want_seconds(seconds))

    def latest(self) -> Any:
        """The value of the key's newest window (the latest start) this worker holds,
        from an event or not (a timer, a web view); the table's default when it holds
        none. Closed windows count until they expire."""
        newest = self.wrapper.newest_window(self.key)
        if newest is None:
            table = self.wrapper.table
            return table.default() if table.default is not None else None
        return newest[1]

    def _op(self, op: Callable[[Any, Any], Any], operand: Any) -> WindowSet:
        return self.__iadd__(operand, op)

    def __iadd__(self, other: Any, op: Callable[[Any, Any], Any] = _add) -> WindowSet:
        """``op(value, other)`` (``+`` by default) in every window of the event's time:
        the per-event path, one call for ``table[key] += 1``."""
        wrapper, key = self.wrapper, self.key
        stream = current_stream.get()
        batch = stream.batch if stream is not None else None
        if batch is None or ((batch is not wrapper._batch
                              or batch is not wrapper.table._hot_batch)
                             and not wrapper._prepare(batch)):
            wrapper._update_anywhere(key, op, other)
            return self
        # the per-event path of tumbling and hopping windows: what can be done once per
        # batch (the partition's cache, the event times) was done by _prepare
        i = stream.cursor  # type: ignore[union-attr]
        if i >= wrapper._size:
            wrapper._update_anywhere(key, op, other)
            return self
        times = wrapper._times
        ts = times[i] if times is not None else wrapper._event_time(batch.messages[i],
                                                                     batch.values[i])
        if ts > wrapper._top:
            if ts >= wrapper._due:
                wrapper._advance(wrapper._partition, ts)  # (sets _top and _due)
            else:
                wrapper.stream_time[wrapper._partition] = wrapper._top = ts
        if not wrapper._tumbling:
            wrapper._update_aligned(wrapper._partition, key, ts, op, other,
                                    wrapper._top)
            return self
        window = wrapper._last
        if not window[0] <= ts < window[1]:
            window = wrapper._locate(ts)
        if wrapper._top >= wrapper._last_close:
            wrapper._count_late()
            return self
        stored_key = wrapper._written.get(key)
        if stored_key is not None:
            # written in this window since _prepare: changed already, and open
            cache = wrapper.table._hot_cache
            value = cache.get(stored_key, _MISSING)
            if value is not _MISSING and value is not _DELETED:
                cache[stored_key] = op(value, other)
                return self
        wrapper._write_first(key, window, op, other)
        return self

    def __isub__(self, other: Any) -> WindowSet:
        return self._op(operator.sub, other)

    def __imul__(self, other: Any) -> WindowSet:
        return self._op(operator.mul, other)

    def __itruediv__(self, other: Any) -> WindowSet:
        return self._op(operator.truediv, other)

    def __ifloordiv__(self, other: Any) -> WindowSet:
        return self._op(operator.floordiv, other)

    def __ior__(self, other: Any) -> WindowSet:
        return self._op(operator.or_, other)

    def __iand__(self, other: Any) -> WindowSet:
        return self._op(operator.and_, other)


def message_time(message: Any, value: Any) -> float:
    """The message timestamp in seconds (``relative_to_stream``)."""
    return float(message.timestamp) / 1000.0


def message_times(batch: Any) -> list[float]:
    """The message timestamps of a batch's events, in seconds."""
    return [float(m.timestamp) / 1000.0 for m in batch.messages]
