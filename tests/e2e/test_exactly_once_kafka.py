"""Exactly-once on ``kafka://`` with real worker processes (issue 20): a zombie worker,
SIGSTOPped while another worker took its partitions, commits nothing of what it did
when it wakes; a worker joining a working one; a worker SIGKILLed again and again.

Each worker has its own data directory, so its own transactional id: nothing fences A
by its id when B starts. Two things do, whichever comes first once A runs again:
- A commits its offsets in its transaction with its consumer's group metadata (member
  id and generation, KIP-447), and the group coordinator refuses them from a member
  that is no longer in the group: the transaction aborts and A stops;
- A's consumer finds it was removed from the group and reports its partitions lost:
  A aborts its transaction instead of committing it (decision 161), and rejoins.
Before the second, A committed its transaction when its partitions were lost, with no
offsets (they were no longer its): its outputs became visible beside B's, and 209
events of 1,500 came out twice.

Runs on Apache Kafka 4.4 and on streamkit broker; tansu does not check the member."""
from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from . import torture

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
#: the brokers that check a transaction's member and generation (tansu does not)
FENCING = pytest.mark.parametrize("kafka_broker", ["apache", "streamkit"], indirect=True)


def _stop_between_commits(worker: torture.Worker, feed: torture.Feed) -> None:
    """SIGSTOP a worker 0.3 s after one of its commits (1 s apart; it says
    ``COMMITTED``): its open transaction then holds the events since and their
    outputs. (Stopped inside a commit, between its offsets and its end, it would keep
    the group's offsets unstable, and the next owner would wait for it.)"""
    seen = worker.log().count("COMMITTED")
    torture._wait(lambda: worker.log().count("COMMITTED") > seen, worker, feed)
    time.sleep(0.3)
    feed.send_due()
    worker.proc.send_signal(signal.SIGSTOP)


@FENCING
def test_a_zombie_worker_commits_nothing_after_its_partitions_moved(
        tmp_path: Path, start_tansu) -> None:
    kafka = start_tansu()
    try:
        run = torture.zombie_run(tmp_path, kafka.url, _stop_between_commits)
    finally:
        kafka.stop()
    result = run.result
    assert (result.duplicates, result.missing, result.count_errors,
            result.report_errors) == (0, 0, 0, 0), result.summary() + "\n" + run.a_log
    if run.a_stopped_by_itself:       # its commit was refused
        assert run.a_exit != 0 and "transaction failed" in run.a_log, run.a_log
    else:                             # it found its partitions lost first
        assert "partitions lost" in run.a_log, run.a_log
        assert run.a_exit == 0, run.a_log


@FENCING
def test_a_worker_joining_takes_partitions_from_a_working_one(tmp_path: Path,
                                                             start_tansu) -> None:
    """A second worker joins while the first works: the first commits what it did with
    the partitions it gives up in the rebalance, and both go on; each event comes out
    once."""
    kafka = start_tansu()
    try:
        result = torture.join_run(tmp_path, kafka.url)
    finally:
        kafka.stop()
    assert (result.duplicates, result.missing, result.count_errors,
            result.report_errors) == (0, 0, 0, 0), result.summary()


@pytest.mark.parametrize("kafka_broker", ["apache"], indirect=True)
def test_sigkilled_worker_counts_and_forwards_each_event_exactly_once(
        tmp_path: Path, start_tansu) -> None:
    """The torture run's short version on Apache Kafka (tools/eos_torture.py --broker
    apache is the long one): a worker SIGKILLed 4 times, restarted each time with its
    data directory (so its transactional id, which fences its previous life)."""
    kafka = start_tansu()
    try:
        result = torture.run(tmp_path, kills=4, events=1500, seed=7,
                             guarantee="exactly_once", life=1.5, broker=kafka.url)
    finally:
        kafka.stop()
    assert result.kills == 4
    assert (result.duplicates, result.missing, result.count_errors,
            result.report_errors, result.last_exit) == (0, 0, 0, 0, 0), result.summary()
    assert result.copies == {1: 1500}
