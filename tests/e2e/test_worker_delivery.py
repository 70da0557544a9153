"""Real worker processes: graceful stop, SIGKILL, poison messages, two workers."""
from __future__ import annotations

import collections
import json

import pytest

from .conftest import (BAD_JSON, WRONG_TYPE, processed_ids, produce_rides, read_topic, table_from_changelog,
                       wait_for)

pytestmark = pytest.mark.slow
N = 3000


def test_sigterm_exits_0_and_a_restart_processes_every_event_exactly_once(workers,
                                                                           tmp_path):
    expected = produce_rides(tmp_path, range(N))
    first = workers(COUNTING_SLEEP="0.0005")
    wait_for(lambda: len(processed_ids(tmp_path)) >= 300, what="first events processed")
    assert first.terminate() == 0, first.log()
    done_before = len(processed_ids(tmp_path))
    assert done_before < N, "the stop should come mid-stream; make the agent slower"

    second = workers()
    wait_for(lambda: len(processed_ids(tmp_path)) >= N, what="all events processed")
    assert second.terminate() == 0, second.log()

    ids = processed_ids(tmp_path)
    assert sorted(ids) == list(range(N))            # each exactly once
    assert table_from_changelog(tmp_path, "counting", "vendor_rides") == {
        str(k): v for k, v in expected.items()} or table_from_changelog(
        tmp_path, "counting", "vendor_rides") == expected


def test_sigkill_mid_stream_then_restart_loses_nothing(workers, tmp_path):
    expected = produce_rides(tmp_path, range(N))
    first = workers(COUNTING_SLEEP="0.0005")
    wait_for(lambda: len(processed_ids(tmp_path)) >= 500, what="first events processed")
    first.kill()

    second = workers()
    wait_for(lambda: set(processed_ids(tmp_path)) >= set(range(N)),
             what="every event processed at least once")
    assert second.terminate() == 0, second.log()
    counts = {int(k): v for k, v in
              table_from_changelog(tmp_path, "counting", "vendor_rides").items()}
    for vendor, count in expected.items():
        assert counts[vendor] >= count                   # at least once


def test_poison_messages_go_to_the_dead_letter_topic_and_the_stream_goes_on(
        workers, tmp_path):
    produce_rides(tmp_path, range(20), bad={7: BAD_JSON, 12: WRONG_TYPE})
    worker = workers()
    wait_for(lambda: len(processed_ids(tmp_path)) >= 18, what="good events processed")
    dlq = wait_for(lambda: len(read_topic(tmp_path, "counting-rides-dlq")) == 2 and
                   read_topic(tmp_path, "counting-rides-dlq"), what="DLQ records")
    assert worker.terminate() == 0
    assert sorted(processed_ids(tmp_path)) == [i for i in range(20) if i not in (7, 12)]
    by_value = {record.value: dict(record.headers) for record in dlq}
    assert set(by_value) == {BAD_JSON, WRONG_TYPE}
    assert "Expecting" in by_value[BAD_JSON]["streamkit.error"].decode()
    assert "Ride.id" in by_value[WRONG_TYPE]["streamkit.error"].decode()
    for value, headers in by_value.items():
        assert headers["streamkit.source.topic"] == b"rides"
        partition = int(headers["streamkit.source.partition"])
        offset = int(headers["streamkit.source.offset"])
        source = [m for m in read_topic(tmp_path, "rides")
                  if m.partition == partition and m.offset == offset]
        assert source and source[0].value == value
    assert worker.log().count("undecodable message rides[") == 2


def test_two_workers_share_partitions_and_the_survivor_takes_over(workers, tmp_path):
    produce_rides(tmp_path, range(N))
    a = workers(COUNTING_SLEEP="0.002")
    b = workers(COUNTING_SLEEP="0.002")
    wait_for(lambda: len({json.loads(m.value)["pid"]
                          for m in read_topic(tmp_path, "processed")}) == 2,
             timeout=40, what="both workers processing")
    b.kill()
    wait_for(lambda: set(processed_ids(tmp_path)) >= set(range(N)), timeout=90,
             what="survivor finishing every event")
    assert a.terminate() == 0, a.log()
    by_pid = collections.Counter(json.loads(m.value)["pid"]
                                 for m in read_topic(tmp_path, "processed"))
    assert by_pid[a.proc.pid] > 0 and by_pid[b.proc.pid] > 0
