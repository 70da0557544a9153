"""Tables across worker restarts: changelog tail replay, rebuild, window closing."""
from __future__ import annotations

import json
import re
import shutil

import pytest

import streamkit

from .conftest import produce_rides, wait_for

pytestmark = pytest.mark.slow
N = 2000


def last_report(worker) -> dict[str, int] | None:
    reports = re.findall(r"^REPORT (.*)$", worker.log(), re.M)
    return {k: v for k, v in json.loads(reports[-1]).items()} if reports else None


def expected_report(expected: dict[int, int]) -> dict[str, int]:
    return {str(k): v for k, v in expected.items()}


def test_restart_replays_only_the_changelog_tail_and_a_lost_store_is_rebuilt(
        workers, tmp_path):
    expected = produce_rides(tmp_path, range(N))
    first = workers()
    wait_for(lambda: last_report(first) == expected_report(expected), what="all counted")
    assert first.terminate() == 0, first.log()

    second = workers()
    wait_for(lambda: last_report(second) == expected_report(expected),
             what="counts after restart")
    assert second.terminate() == 0
    assert "changelog records" not in second.log()   # the stores were up to date

    shutil.rmtree(tmp_path / "counting" / "tables")
    third = workers()
    wait_for(lambda: last_report(third) == expected_report(expected),
             what="counts rebuilt from the changelog")
    assert third.terminate() == 0
    restored = sum(int(n) for n in re.findall(r"restored (\d+) changelog records",
                                              third.log()))
    assert restored >= len(expected)


def test_more_events_after_a_restart_add_to_the_restored_counts(workers, tmp_path):
    expected = produce_rides(tmp_path, range(N))
    first = workers()
    wait_for(lambda: last_report(first) == expected_report(expected), what="all counted")
    first.kill()                                 # SIGKILL after everything committed
    more = produce_rides(tmp_path, range(N, N + 300))
    total = {k: expected[k] + more.get(k, 0) for k in expected}
    second = workers()
    wait_for(lambda: last_report(second) == expected_report(total), what="new counts")
    assert second.terminate() == 0


def produce_timed(datadir, events):
    producer = streamkit.Producer(broker=f"log://{datadir}/log", linger_ms=20)
    admin = streamkit.Admin(broker=f"log://{datadir}/log")
    if "rides" not in admin.list_topics():
        admin.create_topic("rides", partitions=4)
    for i, (vendor, pickup) in events:
        producer.send("rides", key=str(vendor).encode(), value=json.dumps(
            {"id": i, "vendorId": vendor, "pickup": pickup}).encode())
    producer.flush()
    producer.close()


def closed_windows(*workers_) -> list[tuple[str, str, str, str]]:
    out = []
    for worker in workers_:
        out.extend(re.findall(r"^CLOSED (\S+) (\S+) (\S+) (\S+)$", worker.log(), re.M))
    return out


def test_on_window_close_runs_once_per_window_across_a_restart(workers, tmp_path):
    # vendor 1 every 10 s for 5 minutes: windows of 6 events each
    events = list(enumerate((1, 1_600_000_000 + 10 * i) for i in range(30)))
    produce_timed(tmp_path, events[:15])
    first = workers("windowing.py")
    wait_for(lambda: len(closed_windows(first)) >= 2, what="first windows closed")
    assert first.terminate() == 0, first.log()
    produce_timed(tmp_path, events[15:])
    second = workers("windowing.py")
    wait_for(lambda: len(closed_windows(first, second)) >= 5, what="later windows closed")
    assert second.terminate() == 0, second.log()
    windows = closed_windows(first, second)
    starts = [int(start) for _, start, _, _ in windows]
    assert len(starts) == len(set(starts)), windows            # none closed twice
    assert starts == sorted(starts)
    # stream time reached 1_600_000_290: every window ending by then closed, once
    base = 1_599_999_960  # 1_600_000_000 aligned down to the minute
    assert [(int(start), int(value)) for _, start, _, value in windows] == [
        (base, 2), (base + 60, 6), (base + 120, 6), (base + 180, 6), (base + 240, 6)]
    assert closed_windows(first) and closed_windows(second)
