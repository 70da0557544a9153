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

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import timedelta
from math import floor
from typing import Iterable, Sequence, Union

__all__ = [
    "Seconds",
    "WindowRange",
    "want_seconds",
    "TumblingWindow",
    "HoppingWindow",
]

Seconds = Union[float, int, timedelta]
WindowRange = tuple[float, float]


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


def _range_ms(window: WindowRange) -> tuple[int, int]:
    """Bounds of a window range returned by this module, back in integer milliseconds."""
    return round(window[0] * 1000), round(window[1] * 1000)


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
        if expires_ms is not None and expires_ms < grace_ms:
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
        start = self._latest_start_ms(ts)
        return [(start / 1000, (start + self._size_ms) / 1000)]

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
