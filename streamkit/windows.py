"""Window arithmetic: which windows a timestamp falls in, and when they close or expire.

Pure functions of numbers, called once per event by windowed tables, so they are kept
cheap (no allocation beyond the returned tuples).

Units and exactness
-------------------
Timestamps are float seconds since the epoch. Sizes, steps, gaps, grace and expiry are
float seconds or :class:`datetime.timedelta`, and must be whole milliseconds (as in Kafka
Streams, whose windows are in milliseconds). Window bounds are computed in integer
milliseconds and returned as ``ms / 1000``, the float nearest the decimal value, so a
0.1 s window starting at 0.3 is ``(0.3, 0.4)`` and never ``(0.30000000000000004, ...)``:
bounds do not drift however far from the epoch.

Tumbling and hopping windows are half-open ``[start, end)`` with ``end = start + size``
and are aligned to the epoch (every start is a multiple of the step). A window *closes*
when the stream time (largest timestamp seen on the partition) reaches ``end + grace``;
it *expires* (may be deleted) when the stream time reaches ``end + expires``.

Sliding windows (Kafka Streams' ``SlidingWindows``) are closed ``[start, end]`` with
``end - start = size``; session windows are closed ``[first, last]`` record timestamps.
See docs/windows.md for pictures and the exact rules.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol
from collections.abc import Iterable, Mapping

__all__ = [
    "Seconds",
    "Window",
    "WindowRange",
    "want_seconds",
    "TumblingWindow",
    "HoppingWindow",
    "SlidingWindow",
    "SlidingUpdate",
    "SessionWindow",
]

Seconds = float | int | timedelta
WindowRange = tuple[float, float]


class Window(Protocol):
    """What every kind of window (tumbling, hopping, sliding, session) tells a
    windowed table: when a window closes, on stream time."""

    #: seconds a window stays open for late records after its end
    grace: float

    def closes_at(self, window: WindowRange) -> float:
        """The stream time at which ``window`` is closed."""
        ...

    def is_closed(self, window: WindowRange, stream_time: float) -> bool: ...


def want_seconds(value: Seconds) -> float:
    """``value`` as float seconds (a timedelta or a number)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def _to_ms(value: Seconds, what: str, *, allow_zero: bool = False) -> int:
    """A duration as whole milliseconds; refuse negatives and sub-millisecond parts."""
    if isinstance(value, timedelta):
        total_us = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        ms, rest = divmod(total_us, 1000)
        if rest:
            raise ValueError(f"window {what} {value!r} is not a whole number of milliseconds")
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"window {what} must be seconds (float) or timedelta, got {value!r}")
        exact = value * 1000
        ms = round(exact)
        if abs(exact - ms) > 1e-6 * max(1.0, abs(exact)):
            raise ValueError(f"window {what} {value!r} s is not a whole number of milliseconds")
    if ms < 0 or (ms == 0 and not allow_zero):
        raise ValueError(f"window {what} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return ms


def _optional_ms(value: Seconds | None, what: str) -> int | None:
    return None if value is None else _to_ms(value, what, allow_zero=True)


class _AlignedWindow:
    """Epoch-aligned half-open windows of ``size``, a new one every ``step``."""

    __slots__ = ("size", "step", "grace", "expires", "_size_ms", "_step_ms", "_grace_ms",
                 "_expires_ms")

    def __init__(self, size: Seconds, step: Seconds, expires: Seconds | None,
                 grace: Seconds) -> None:
        size_ms = _to_ms(size, "size")
        step_ms = _to_ms(step, "step")
        if step_ms > size_ms:
            raise ValueError(
                f"hopping window step {want_seconds(step)} s is larger than its size "
                f"{want_seconds(size)} s: events between windows would be lost")
        grace_ms = _to_ms(grace, "grace", allow_zero=True)
        expires_ms = _optional_ms(expires, "expires")
        if expires is not None and expires_ms is not None and expires_ms < grace_ms:
            raise ValueError(
                f"window expires={want_seconds(expires)} s is shorter than grace="
                f"{want_seconds(grace)} s: windows would be deleted before they close")
        self._size_ms, self._step_ms = size_ms, step_ms
        self._grace_ms, self._expires_ms = grace_ms, expires_ms
        self.size = size_ms / 1000
        self.step = step_ms / 1000
        self.grace = grace_ms / 1000
        self.expires = None if expires_ms is None else expires_ms / 1000

    def _latest_start_ms(self, ts: float, back_ms: int = 0) -> int:
        """Start (ms) of the latest window containing ``ts - back_ms``: the last step at
        or before it."""
        step = self._step_ms
        k = int((ts * 1000.0 - back_ms) // step)
        # ts * 1000 may round across a boundary; fix up so start <= ts - back < start + step
        # holds exactly, compared as (start + back) / 1000 against the float ts given.
        if ((k + 1) * step + back_ms) / 1000 <= ts:
            k += 1
        elif (k * step + back_ms) / 1000 > ts:
            k -= 1
        return k * step

    def ranges(self, ts: float) -> list[WindowRange]:
        """Every window whose range contains ``ts``, oldest first."""
        size, step = self._size_ms, self._step_ms
        latest = self._latest_start_ms(ts)
        out = []
        start = latest - ((size - 1) // step) * step
        while start <= latest:
            if (start + size) / 1000 > ts:
                out.append((start / 1000, (start + size) / 1000))
            start += step
        return out

    def current(self, ts: float) -> WindowRange:
        """The latest window containing ``ts``."""
        start = self._latest_start_ms(ts)
        return (start / 1000, (start + self._size_ms) / 1000)

    def delta(self, ts: float, d: Seconds) -> WindowRange:
        """The window :meth:`current` gives for ``ts - d`` (computed without the float
        rounding of that subtraction; ``d`` in whole milliseconds)."""
        start = self._latest_start_ms(ts, _to_ms(d, "delta", allow_zero=True))
        return (start / 1000, (start + self._size_ms) / 1000)

    def earliest(self, ts: float) -> WindowRange:
        """The oldest window containing ``ts``."""
        return self.ranges(ts)[0]

    def closes_at(self, window: WindowRange) -> float:
        """Stream time at which ``window`` closes: ``end + grace``."""
        return (round(window[1] * 1000) + self._grace_ms) / 1000

    def is_closed(self, window: WindowRange, stream_time: float) -> bool:
        """True once ``stream_time >= end + grace``: late events for it are dropped."""
        return stream_time >= (round(window[1] * 1000) + self._grace_ms) / 1000

    def expires_at(self, window: WindowRange) -> float | None:
        """Stream time at which ``window`` may be deleted (``end + expires``), or None."""
        if self._expires_ms is None:
            return None
        return (round(window[1] * 1000) + self._expires_ms) / 1000

    def expired(self, window: WindowRange, stream_time: float) -> bool:
        """True once ``stream_time >= end + expires`` (never when ``expires`` is None)."""
        if self._expires_ms is None:
            return False
        return stream_time >= (round(window[1] * 1000) + self._expires_ms) / 1000

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(size={self.size}, step={self.step}, "
                f"expires={self.expires}, grace={self.grace})")


class TumblingWindow(_AlignedWindow):
    """Fixed-size, non-overlapping windows ``[k*size, (k+1)*size)``: each timestamp is in
    exactly one."""

    __slots__ = ()

    def __init__(self, size: Seconds, expires: Seconds | None = None,
                 grace: Seconds = 0) -> None:
        super().__init__(size, size, expires, grace)

    def ranges(self, ts: float) -> list[WindowRange]:
        """The one window containing ``ts``, in a list (the shape hopping windows use)."""
        # _latest_start_ms inlined: this runs once per event
        size = self._size_ms
        start = int((ts * 1000.0) // size) * size
        if (start + size) / 1000 <= ts:
            start += size
        elif start / 1000 > ts:
            start -= size
        return [(start / 1000, (start + size) / 1000)]

    def earliest(self, ts: float) -> WindowRange:
        """The window containing ``ts`` (there is only one)."""
        return self.current(ts)

    def __repr__(self) -> str:
        return f"TumblingWindow(size={self.size}, expires={self.expires}, grace={self.grace})"


class HoppingWindow(_AlignedWindow):
    """Fixed-size windows starting every ``step`` (``step <= size``); a timestamp is in
    about ``size / step`` of them (exactly that many when the step divides the size)."""

    __slots__ = ()

    def __init__(self, size: Seconds, step: Seconds, expires: Seconds | None = None,
                 grace: Seconds = 0) -> None:
        super().__init__(size, step, expires, grace)


@dataclass(frozen=True, slots=True)
class SlidingUpdate:
    """What one record does to the sliding windows of its key.

    Apply it in this order: read the value of every ``seed`` first, then store each
    created window with its seed's value (or the table default where the seed is None),
    then add the record to every window in ``add``. Store ``max_ts[w]`` with each window
    touched: it is the largest record timestamp in the window, which the next update
    needs.
    """

    #: new windows, oldest first, each with the existing window holding exactly the
    #: same earlier records (its value is the starting value), or None (start empty).
    create: list[tuple[WindowRange, WindowRange | None]]
    #: windows (existing or just created) the record belongs to, oldest first.
    add: list[WindowRange]
    #: largest record timestamp of every window created or added to.
    max_ts: dict[WindowRange, float]
    #: the record is too late for every window it could be in: drop and count it.
    late: bool = False


class SlidingWindow:
    """Kafka Streams' sliding windows: fixed ``size``, both ends inclusive, a window for
    every distinct set of records no further than ``size`` apart.

    Each record at ``t`` has a *left window* ``[t - size, t]`` (ending at it), and, when a
    later record lies within ``size`` of it, a *right window* ``[t + 1ms, t + 1ms + size]``
    (starting just after it: the first window it has left). Timestamps count in whole
    milliseconds (rounded), as in Kafka. A window closes once the stream time passes
    ``end + grace``; a record is dropped as late once every window that could hold it
    (the latest ends at ``t + size``) has closed.
    """

    __slots__ = ("size", "grace", "_size_ms", "_grace_ms")

    def __init__(self, size: Seconds, grace: Seconds = 0) -> None:
        self._size_ms = _to_ms(size, "size")
        self._grace_ms = _to_ms(grace, "grace", allow_zero=True)
        self.size = self._size_ms / 1000
        self.grace = self._grace_ms / 1000

    def current(self, ts: float) -> WindowRange:
        """The left window of a record at ``ts``: ``(ts - size, ts)``."""
        t = round(ts * 1000)
        return ((t - self._size_ms) / 1000, t / 1000)

    def delta(self, ts: float, d: Seconds) -> WindowRange:
        """The left window of a record at ``ts - d``."""
        t = round(ts * 1000) - _to_ms(d, "delta", allow_zero=True)
        return ((t - self._size_ms) / 1000, t / 1000)

    def closes_at(self, window: WindowRange) -> float:
        """Stream time at which ``window`` is closed: just past ``end + grace`` (the end is
        inclusive, so stream time ``end + grace`` itself still accepts records)."""
        return (round(window[1] * 1000) + self._grace_ms + 1) / 1000

    def is_closed(self, window: WindowRange, stream_time: float) -> bool:
        """True once ``stream_time > end + grace``."""
        return round(stream_time * 1000) > round(window[1] * 1000) + self._grace_ms

    def expires_at(self, window: WindowRange) -> float:
        """Stream time from which ``window`` may be deleted: ``size`` after it closes.
        Until then later records may still copy its value into a new window."""
        return (round(window[1] * 1000) + self._grace_ms + self._size_ms + 1) / 1000

    def expired(self, window: WindowRange, stream_time: float) -> bool:
        """True once ``stream_time > end + grace + size`` (see :meth:`expires_at`)."""
        return (round(stream_time * 1000)
                > round(window[1] * 1000) + self._grace_ms + self._size_ms)

    def is_late(self, ts: float, stream_time: float) -> bool:
        """True when every window a record at ``ts`` could be in is closed: stream time
        past ``ts + size + grace``."""
        return round(stream_time * 1000) > round(ts * 1000) + self._size_ms + self._grace_ms

    def update(self, windows: Mapping[WindowRange, float], ts: float,
               stream_time: float | None = None) -> SlidingUpdate:
        """The windows a record at ``ts`` creates and joins.

        ``windows`` maps the key's existing windows to the largest record timestamp in
        each. Only windows starting in ``[ts - 2*size, ts + 1ms]`` matter; passing just
        those (as Kafka fetches them) keeps this cheap for keys with long histories.
        ``stream_time`` (including this record) makes closed windows left alone and a
        late record reported as ``late``; None ignores closing.
        """
        size = self._size_ms
        t = round(ts * 1000)
        if stream_time is not None and self.is_late(ts, stream_time):
            return SlidingUpdate([], [], {}, late=True)
        # open iff end >= close_limit (Kafka: window end >= stream time - grace)
        close_limit = None if stream_time is None else round(stream_time * 1000) - self._grace_ms

        existing: dict[tuple[int, int], int] = {}
        for (start, end), top in windows.items():
            existing[(round(start * 1000), round(end * 1000))] = round(top * 1000)
        starts = {window[0] for window in existing}

        def is_open(end: int) -> bool:
            return close_limit is None or end >= close_limit

        add: list[tuple[int, int]] = []
        create: list[tuple[tuple[int, int], tuple[int, int] | None]] = []
        max_ts: dict[tuple[int, int], int] = {}
        # Seeds are chosen by position, as Kafka Streams does, so that they stay right
        # when a record's own left window was never made (it was already closed):
        # - the latest window ending before t holds the records just before t's left
        #   window starts to matter; its largest timestamp is the previous record;
        # - the latest-starting window that holds t and ends after it holds exactly the
        #   records after t that t's right window will hold.
        # The previous record is the largest record timestamp below t that any window
        # shows (Kafka looks only at the window ending before t and t's left window,
        # which misses a previous record whose own left window was closed).
        before: tuple[int, int] | None = None
        after: tuple[int, int] | None = None
        previous: int | None = None
        for window, top in existing.items():
            start, end = window
            if end < t:
                if before is None or start > before[0]:
                    before = window
            elif start <= t:
                if end > t and (after is None or start > after[0]):
                    after = window
                if is_open(end):
                    add.append(window)
                    max_ts[window] = max(top, t)
            if top < t and (previous is None or top > previous):
                previous = top
        left = (t - size, t)

        # (a previous record 1 ms further back would have t's left window as its right
        # window: that one is made below as the left window)
        if previous is not None and previous >= t - size and previous + 1 not in starts:
            window = (previous + 1, previous + 1 + size)   # the previous record's right window
            if is_open(window[1]):
                create.append((window, None))
                add.append(window)
                max_ts[window] = t
        if left not in existing and is_open(t):
            seed = before if before is not None and existing[before] >= t - size else None
            create.append((left, seed))
            add.append(left)
            max_ts[left] = t
        if t + 1 not in starts and after is not None and existing[after] > t:
            window = (t + 1, t + 1 + size)                  # the record's own right window
            if is_open(window[1]):
                create.append((window, after))
                max_ts[window] = existing[after]

        add.sort()
        create.sort(key=lambda pair: pair[0])
        return SlidingUpdate(
            create=[(_seconds(w), None if seed is None else _seconds(seed)) for w, seed in create],
            add=[_seconds(w) for w in add],
            max_ts={_seconds(w): m / 1000 for w, m in max_ts.items()},
        )

    def __repr__(self) -> str:
        return f"SlidingWindow(size={self.size}, grace={self.grace})"


class SessionWindow:
    """Sessions of activity: records no more than ``gap`` apart (inclusive, as Kafka
    Streams' inactivity gap) share a session ``[first, last]``; a record that bridges two
    sessions merges them.

    A session closes once the stream time passes ``last + gap + grace``: until then a
    record may still extend it. Timestamps count in whole milliseconds (rounded).
    """

    __slots__ = ("gap", "grace", "_gap_ms", "_grace_ms")

    def __init__(self, gap: Seconds, grace: Seconds = 0) -> None:
        self._gap_ms = _to_ms(gap, "gap")
        self._grace_ms = _to_ms(grace, "grace", allow_zero=True)
        self.gap = self._gap_ms / 1000
        self.grace = self._grace_ms / 1000

    def joins(self, session: WindowRange, ts: float) -> bool:
        """True when a record at ``ts`` is within ``gap`` of ``session`` (inclusive)."""
        t = round(ts * 1000)
        return (round(session[1] * 1000) >= t - self._gap_ms
                and round(session[0] * 1000) <= t + self._gap_ms)

    def merge(self, existing: Iterable[WindowRange], ts: float
              ) -> tuple[WindowRange, list[WindowRange]]:
        """The session a record at ``ts`` ends up in, and the existing sessions it joins.

        ``existing`` are the key's sessions (any order). The returned session spans the
        record and every joined session; the joined ones (oldest first) are replaced by
        it: the table combines their values into the new session and deletes each of them
        that differs from it. Records at 10, 12, 20 with gap 5 give (10, 12) and
        (20, 20); a record at 16 then joins both and gives (10, 20).
        """
        t = round(ts * 1000)
        low, high = t - self._gap_ms, t + self._gap_ms
        start = end = t
        joined = []
        for session in existing:
            s, e = round(session[0] * 1000), round(session[1] * 1000)
            if e >= low and s <= high:
                joined.append(session)
                if s < start:
                    start = s
                if e > end:
                    end = e
        joined.sort()
        return (start / 1000, end / 1000), joined

    def closes_at(self, session: WindowRange) -> float:
        """Stream time at which ``session`` is closed: just past ``last + gap + grace``."""
        return (round(session[1] * 1000) + self._gap_ms + self._grace_ms + 1) / 1000

    def is_closed(self, session: WindowRange, stream_time: float) -> bool:
        """True once ``stream_time > last + gap + grace``: no record may change it."""
        return (round(stream_time * 1000)
                > round(session[1] * 1000) + self._gap_ms + self._grace_ms)

    def is_late(self, ts: float, joined: Iterable[WindowRange], stream_time: float) -> bool:
        """True when a record at ``ts`` must be dropped: it joins a closed session, or
        joins none and its own session ``(ts, ts)`` is already closed."""
        joined = list(joined)
        if not joined:
            return self.is_closed((ts, ts), stream_time)
        return any(self.is_closed(session, stream_time) for session in joined)

    def __repr__(self) -> str:
        return f"SessionWindow(gap={self.gap}, grace={self.grace})"


def _seconds(window: tuple[int, int]) -> WindowRange:
    return (window[0] / 1000, window[1] / 1000)


if TYPE_CHECKING:   # (checked by mypy: each kind of window is a Window)
    _KINDS: tuple[type[Window], ...] = (TumblingWindow, HoppingWindow, SlidingWindow,
                                        SessionWindow)
