"""Tumbling and hopping window arithmetic: half-open, epoch-aligned, exact for float sizes."""
from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from streamkit.windows import HoppingWindow, TumblingWindow

# Timestamps from before the epoch to year ~2100, at sub-millisecond resolution too.
timestamps = st.floats(min_value=-1e6, max_value=4.1e9, allow_nan=False, allow_infinity=False)
ms_timestamps = st.integers(min_value=-10**9, max_value=4 * 10**12).map(lambda ms: ms / 1000)
sizes_ms = st.integers(min_value=1, max_value=86_400_000)


@given(ts=timestamps, size_ms=sizes_ms)
def test_every_timestamp_falls_in_exactly_one_tumbling_window(ts: float, size_ms: int) -> None:
    window = TumblingWindow(size_ms / 1000)
    ranges = window.ranges(ts)
    assert len(ranges) == 1
    start, end = ranges[0]
    assert start <= ts < end
    assert ranges[0] == window.current(ts) == window.earliest(ts)
    # aligned to the epoch, end = start + size, in whole milliseconds
    assert round(start * 1000) % size_ms == 0
    assert round(end * 1000) - round(start * 1000) == size_ms


@given(ts=ms_timestamps, size_ms=sizes_ms)
def test_neighbouring_tumbling_windows_do_not_overlap(ts: float, size_ms: int) -> None:
    window = TumblingWindow(size_ms / 1000)
    start, end = window.current(ts)
    assert window.current(end) == (end, (round(end * 1000) + size_ms) / 1000)
    assert window.current(start) == (start, end)
    # the previous window ends exactly where this one starts
    assert window.delta(start, size_ms / 1000)[1] == start


@given(ts=timestamps, step_ms=st.integers(1, 3_600_000), factor=st.integers(1, 12))
def test_hopping_gives_size_over_step_windows_when_step_divides_size(
        ts: float, step_ms: int, factor: int) -> None:
    window = HoppingWindow(step_ms * factor / 1000, step_ms / 1000)
    ranges = window.ranges(ts)
    assert len(ranges) == factor == math.ceil(window.size / window.step - 1e-9)
    for start, end in ranges:
        assert start <= ts < end
        assert round(start * 1000) % step_ms == 0
    assert ranges == sorted(ranges)
    assert ranges[-1] == window.current(ts)
    assert ranges[0] == window.earliest(ts)


@given(ts=timestamps, step_ms=st.integers(1, 100_000), size_ms=st.integers(1, 1_000_000))
def test_hopping_ranges_are_exactly_the_windows_containing_ts(
        ts: float, step_ms: int, size_ms: int) -> None:
    assume(step_ms <= size_ms and size_ms // step_ms <= 200)
    window = HoppingWindow(size_ms / 1000, step_ms / 1000)
    ranges = window.ranges(ts)
    assert math.floor(size_ms / step_ms) <= len(ranges) <= math.ceil(size_ms / step_ms)
    assert all(start <= ts < end for start, end in ranges)
    # the window before the oldest and after the latest do not contain ts
    first_start = round(ranges[0][0] * 1000)
    last_start = round(ranges[-1][0] * 1000)
    assert (first_start - step_ms + size_ms) / 1000 <= ts
    assert (last_start + step_ms) / 1000 > ts
    starts = [round(s * 1000) for s, _ in ranges]
    assert starts == list(range(first_start, last_start + 1, step_ms))


@pytest.mark.parametrize("size", [0.1, 0.3, 0.7, 1.1, 0.001])
def test_float_sizes_do_not_drift(size: float) -> None:
    window = TumblingWindow(size)
    size_ms = round(size * 1000)
    for k in list(range(-50, 50)) + [10**9, 1_700_000_000_000 // size_ms]:
        start = k * size_ms / 1000
        end = (k + 1) * size_ms / 1000
        assert window.ranges(start) == [(start, end)], k
        # half-open: the exact end belongs to the next window
        assert window.current(end)[0] == end


def test_half_open_boundaries_at_exact_ends() -> None:
    window = TumblingWindow(10)
    assert window.ranges(0) == [(0.0, 10.0)]
    assert window.ranges(9.999) == [(0.0, 10.0)]
    assert window.ranges(10) == [(10.0, 20.0)]
    assert window.ranges(-0.001) == [(-10.0, 0.0)]
    hopping = HoppingWindow(10, 5)
    assert hopping.ranges(10) == [(5.0, 15.0), (10.0, 20.0)]
    assert hopping.ranges(9.999) == [(0.0, 10.0), (5.0, 15.0)]
    assert hopping.current(10) == (10.0, 20.0)
    assert hopping.earliest(10) == (5.0, 15.0)


def test_point_three_is_in_the_window_starting_at_point_three() -> None:
    window = TumblingWindow(0.1)
    assert window.ranges(0.3) == [(0.3, 0.4)]
    assert window.ranges(0.1 + 0.2) == [(0.3, 0.4)]       # 0.30000000000000004
    assert window.ranges(0.29999999) == [(0.2, 0.3)]


def test_uneven_hopping_window() -> None:
    window = HoppingWindow(10, 3)
    assert window.ranges(9.5) == [(0.0, 10.0), (3.0, 13.0), (6.0, 16.0), (9.0, 19.0)]
    assert window.ranges(10.5) == [(3.0, 13.0), (6.0, 16.0), (9.0, 19.0)]


def test_timedelta_sizes() -> None:
    window = HoppingWindow(timedelta(minutes=1), timedelta(seconds=20),
                           expires=timedelta(hours=1), grace=timedelta(seconds=5))
    assert (window.size, window.step, window.expires, window.grace) == (60.0, 20.0, 3600.0, 5.0)
    assert window.ranges(130) == [(80.0, 140.0), (100.0, 160.0), (120.0, 180.0)]


def test_delta_is_the_window_of_ts_minus_d() -> None:
    window = TumblingWindow(60)
    assert window.delta(125, 60) == (60.0, 120.0)
    assert window.delta(125, timedelta(minutes=2)) == (0.0, 60.0)
    assert HoppingWindow(60, 30).delta(125, 30) == (90.0, 150.0)


def test_close_at_end_plus_grace_on_stream_time() -> None:
    window = TumblingWindow(0.1, grace=0.2)
    w = window.current(0.35)
    assert w == (0.3, 0.4)
    assert window.closes_at(w) == 0.6
    assert not window.is_closed(w, 0.599)
    assert window.is_closed(w, 0.6)
    no_grace = TumblingWindow(10)
    assert not no_grace.is_closed((0.0, 10.0), 9.999)
    assert no_grace.is_closed((0.0, 10.0), 10.0)


def test_expiry_is_measured_from_the_window_end_on_stream_time() -> None:
    window = TumblingWindow(60, expires=3600, grace=10)
    w = (0.0, 60.0)
    assert window.expires_at(w) == 3660.0
    assert not window.expired(w, 3659.999)
    assert window.expired(w, 3660.0)
    forever = TumblingWindow(60)
    assert forever.expires is None and forever.expires_at(w) is None
    assert not forever.expired(w, 1e12)


@pytest.mark.parametrize("kwargs, message", [
    (dict(size=0), "size must be > 0"),
    (dict(size=-1), "size must be > 0"),
    (dict(size=0.0001), "not a whole number of milliseconds"),
    (dict(size=timedelta(microseconds=1500)), "not a whole number of milliseconds"),
    (dict(size=10, expires=1, grace=5), "shorter than grace"),
    (dict(size="10"), "seconds"),
])
def test_bad_window_arguments_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        TumblingWindow(**kwargs)


def test_hopping_step_larger_than_size_is_refused() -> None:
    with pytest.raises(ValueError, match="step 20.0 s is larger than its size 10.0 s"):
        HoppingWindow(10, 20)


@settings(max_examples=50)
@given(ts=ms_timestamps)
def test_tumbling_and_hopping_with_equal_step_agree(ts: float) -> None:
    assert TumblingWindow(0.3).ranges(ts) == HoppingWindow(0.3, 0.3).ranges(ts)
