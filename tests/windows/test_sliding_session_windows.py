"""Sliding windows (Kafka Streams' SlidingWindows) and session windows: the windows the
pure arithmetic creates match a brute-force model for any arrival order."""
from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streamkit.windows import SessionWindow, SlidingWindow

# ---------------------------------------------------------------------------- sliding


def run_sliding(window: SlidingWindow, records: list[float], grace_check: bool = False):
    """Feed records (in arrival order) through update() like a table would, keeping per
    window the set of record indexes (the 'aggregate') and the max record timestamp."""
    values: dict[tuple[float, float], tuple[int, ...]] = {}
    max_ts: dict[tuple[float, float], float] = {}
    late = []
    stream_time = None
    for i, ts in enumerate(records):
        stream_time = ts if stream_time is None else max(stream_time, ts)
        update = window.update(max_ts, ts, stream_time if grace_check else None)
        if update.late:
            late.append(i)
            continue
        assert len(set(update.create)) == len(update.create)
        assert len(set(update.add)) == len(update.add)
        seeds = {w: values[s] if s is not None else () for w, s in update.create}
        values.update(seeds)
        for w in update.add:
            values[w] = tuple(sorted(values[w] + (i,)))   # a record added twice shows
        max_ts.update(update.max_ts)
        if grace_check:
            assert all(not window.is_closed(w, stream_time) for w in update.add)
    return values, max_ts, late


def kafka_windows(size_ms: int, records_ms: list[int]) -> dict[tuple[float, float], tuple[int, ...]]:
    """Kafka's window set by definition: a left window per record, a right window per
    record that has a later one within size; each holding the records in its range."""
    ranges = set()
    for r in records_ms:
        ranges.add((r - size_ms, r))
        if any(r < other <= r + size_ms for other in records_ms):
            ranges.add((r + 1, r + 1 + size_ms))
    return {
        (s / 1000, e / 1000): tuple(i for i, r in enumerate(records_ms) if s <= r <= e)
        for s, e in ranges
    }


def test_kafka_streams_javadoc_example() -> None:
    # time difference 5000 ms, records 1 @ 8000, 2 @ 9200, 3 @ 12400: five windows
    values, max_ts, _ = run_sliding(SlidingWindow(5), [8.0, 9.2, 12.4])
    assert {w: sorted(i + 1 for i in v) for w, v in values.items()} == {
        (3.0, 8.0): [1],
        (4.2, 9.2): [1, 2],
        (7.4, 12.4): [1, 2, 3],
        (8.001, 13.001): [2, 3],
        (9.201, 14.201): [3],
    }
    assert max_ts[(8.001, 13.001)] == 12.4


def test_first_record_creates_its_left_window_only() -> None:
    update = SlidingWindow(timedelta(seconds=10)).update({}, 100.0)
    assert update.create == [((90.0, 100.0), None)]
    assert update.add == [(90.0, 100.0)]
    assert update.max_ts == {(90.0, 100.0): 100.0}
    assert not update.late


def test_both_ends_are_inclusive() -> None:
    # records exactly size apart share a window; 1 ms more and they do not
    values, _, _ = run_sliding(SlidingWindow(10), [0.0, 10.0])
    assert values[(0.0, 10.0)] == (0, 1)
    values, _, _ = run_sliding(SlidingWindow(10), [0.0, 10.001])
    assert all(len(v) == 1 for v in values.values())
    assert set(values) == {(-10.0, 0.0), (0.001, 10.001)}


def test_out_of_order_record_creates_its_right_window_from_a_seed() -> None:
    window = SlidingWindow(5)
    values, max_ts, _ = run_sliding(window, [10.0, 20.0])
    update = window.update(max_ts, 16.0)
    # [11, 16] is new and empty before the record; [16.001, 21.001] starts from [15, 20]
    assert update.create == [((11.0, 16.0), None), ((16.001, 21.001), (15.0, 20.0))]
    assert update.add == [(11.0, 16.0), (15.0, 20.0)]


def test_closed_windows_are_not_touched_and_late_records_are_reported() -> None:
    window = SlidingWindow(5, grace=0)
    _, max_ts, _ = run_sliding(window, [10.0, 20.0])
    update = window.update(max_ts, 16.0, stream_time=20.0)
    # [11, 16] closed at stream time 20 (> 16 + 0): not created; its right window is open
    assert update.create == [((16.001, 21.001), (15.0, 20.0))]
    assert update.add == [(15.0, 20.0)]
    assert window.is_late(14.0, 20.0) and window.update(max_ts, 14.0, 20.0).late
    assert not window.is_late(15.0, 20.0)
    assert window.is_closed((11.0, 16.0), 16.001) and not window.is_closed((11.0, 16.0), 16.0)
    assert window.closes_at((11.0, 16.0)) == 16.001
    assert window.expires_at((11.0, 16.0)) == 21.001


def test_sliding_current_and_delta() -> None:
    window = SlidingWindow(0.3)
    assert window.current(1.0) == (0.7, 1.0)
    assert window.delta(1.0, 0.1) == (0.6, 0.9)


@settings(max_examples=300, deadline=None)
@given(size_ms=st.integers(1, 20),
       records=st.lists(st.integers(0, 60), min_size=1, max_size=12))
def test_sliding_windows_match_kafka_for_any_arrival_order(size_ms: int, records: list[int]) -> None:
    window = SlidingWindow(size_ms / 1000)
    values, max_ts, late = run_sliding(window, [r / 1000 for r in records])
    assert late == []
    assert values == kafka_windows(size_ms, records)
    for w, members in values.items():
        assert max_ts[w] == max(records[i] for i in members) / 1000


@settings(max_examples=300, deadline=None)
@given(size_ms=st.integers(1, 20), records=st.lists(st.integers(0, 60), min_size=1, max_size=12),
       ts=st.integers(0, 60))
def test_only_windows_near_the_record_matter(size_ms: int, records: list[int], ts: int) -> None:
    window = SlidingWindow(size_ms / 1000)
    _, max_ts, _ = run_sliding(window, [r / 1000 for r in records])
    near = {w: m for w, m in max_ts.items()
            if (ts - 2 * size_ms) / 1000 <= w[0] <= (ts + 1) / 1000}
    assert window.update(near, ts / 1000) == window.update(max_ts, ts / 1000)


@settings(max_examples=300, deadline=None)
@given(size_ms=st.integers(1, 20), grace_ms=st.integers(0, 30),
       records=st.lists(st.integers(0, 60), min_size=1, max_size=12))
@example(size_ms=2, grace_ms=0, records=[38, 36, 37])     # a record whose left window closed
@example(size_ms=2, grace_ms=2, records=[0, 5, 1, 2, 1])  # ... then a duplicate of it
def test_sliding_windows_with_closing_stay_sound(size_ms: int, grace_ms: int,
                                                 records: list[int]) -> None:
    window = SlidingWindow(size_ms / 1000, grace=grace_ms / 1000)
    values, _, late = run_sliding(window, [r / 1000 for r in records], grace_check=True)
    model = kafka_windows(size_ms, [r for i, r in enumerate(records) if i not in late])
    # never a window Kafka would not have, never a record outside a window's range
    for w, members in values.items():
        assert w in model
        assert all(w[0] <= records[i] / 1000 <= w[1] for i in members)
    if all(b >= a for a, b in zip(records, records[1:])):
        # in-order input: nothing is late, and every window equals Kafka's
        assert late == [] and values == model


@given(records=st.lists(st.integers(0, 60), min_size=1, max_size=12))
def test_a_grace_longer_than_the_disorder_changes_nothing(records: list[int]) -> None:
    window = SlidingWindow(0.01, grace=1)
    values, _, late = run_sliding(window, [r / 1000 for r in records], grace_check=True)
    assert late == [] and values == kafka_windows(10, records)


# ---------------------------------------------------------------------------- session


def run_sessions(window: SessionWindow, records: list[float]):
    sessions: dict[tuple[float, float], frozenset[int]] = {}
    for i, ts in enumerate(records):
        session, joined = window.merge(list(sessions), ts)
        members = frozenset({i}).union(*(sessions.pop(s) for s in joined))
        sessions[session] = members
    return sessions


def test_issue_example_sessions_merge() -> None:
    window = SessionWindow(5)
    assert run_sessions(window, [10, 12, 20]) == {(10.0, 12.0): {0, 1}, (20.0, 20.0): {2}}
    assert run_sessions(window, [10, 12, 20, 16]) == {(10.0, 20.0): {0, 1, 2, 3}}


def test_merge_returns_the_joined_sessions() -> None:
    window = SessionWindow(5)
    assert window.merge([], 10) == ((10.0, 10.0), [])
    assert window.merge([(20.0, 20.0), (10.0, 12.0)], 16) == (
        (10.0, 20.0), [(10.0, 12.0), (20.0, 20.0)])
    # a record inside a session joins it without changing it
    assert window.merge([(10.0, 20.0)], 15) == ((10.0, 20.0), [(10.0, 20.0)])


def test_gap_is_inclusive_like_kafka_streams() -> None:
    window = SessionWindow(timedelta(seconds=5))
    assert window.merge([(10.0, 12.0)], 17.0) == ((10.0, 17.0), [(10.0, 12.0)])
    assert window.merge([(10.0, 12.0)], 17.001) == ((17.001, 17.001), [])
    assert window.merge([(10.0, 12.0)], 5.0) == ((5.0, 12.0), [(10.0, 12.0)])
    assert window.merge([(10.0, 12.0)], 4.999) == ((4.999, 4.999), [])
    assert window.joins((10.0, 12.0), 17.0) and not window.joins((10.0, 12.0), 17.001)


def test_kafka_streams_session_example() -> None:
    # Kafka's docs: inactivity gap 5 minutes; green records at 0:00, 0:06 (one session
    # each), then 0:05 arrives and bridges them into one session 0:00-0:06.
    window = SessionWindow(timedelta(minutes=5))
    minute = 60.0
    sessions = run_sessions(window, [0, 6 * minute])
    assert set(sessions) == {(0.0, 0.0), (360.0, 360.0)}
    sessions = run_sessions(window, [0, 6 * minute, 5 * minute])
    assert set(sessions) == {(0.0, 360.0)}


def test_session_closing_and_lateness() -> None:
    window = SessionWindow(5, grace=2)
    assert window.closes_at((10.0, 12.0)) == 19.001
    assert not window.is_closed((10.0, 12.0), 19.0)
    assert window.is_closed((10.0, 12.0), 19.001)
    # a record that joins a closed session is late, even if its own session is not
    assert window.is_late(16.0, [(10.0, 12.0)], stream_time=19.5)
    assert not window.is_late(16.0, [(10.0, 12.0)], stream_time=19.0)
    # a record that joins nothing is late once its own session would be closed
    assert window.is_late(1.0, [], stream_time=8.001)
    assert not window.is_late(1.0, [], stream_time=8.0)


@settings(max_examples=300, deadline=None)
@given(gap_ms=st.integers(1, 10), records=st.lists(st.integers(0, 80), min_size=1, max_size=15))
def test_sessions_match_the_model_for_any_arrival_order(gap_ms: int, records: list[int]) -> None:
    sessions = run_sessions(SessionWindow(gap_ms / 1000), [r / 1000 for r in records])
    # model: sort, split where consecutive records are more than gap apart
    order = sorted(range(len(records)), key=lambda i: records[i])
    expected: dict[tuple[float, float], frozenset[int]] = {}
    group = [order[0]]
    for prev, cur in zip(order, order[1:]):
        if records[cur] - records[prev] > gap_ms:
            expected[(records[group[0]] / 1000, records[group[-1]] / 1000)] = frozenset(group)
            group = []
        group.append(cur)
    expected[(records[group[0]] / 1000, records[group[-1]] / 1000)] = frozenset(group)
    assert sessions == expected


def test_bad_sliding_and_session_arguments() -> None:
    with pytest.raises(ValueError, match="size must be > 0"):
        SlidingWindow(0)
    with pytest.raises(ValueError, match="gap must be > 0"):
        SessionWindow(0)
    with pytest.raises(ValueError, match="grace must be >= 0"):
        SessionWindow(5, grace=-1)
