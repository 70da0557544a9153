"""Readers wake on appends (decision 111): a reader blocked in ``Broker.fetch`` or a
consumer's ``poll`` with a long timeout returns as soon as another process appends, not
after a sleep, and no wake-up is lost when the append races the reader's wait."""
from __future__ import annotations

import os
import random
import resource
import statistics
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import streamkit
from streamkit.transport import connect
from streamkit.types import Message, TopicPartition

from .conftest import PYTHON, subprocess_env

#: another process that appends one record per line it reads: "<partition> <delay us>";
#: it prints the monotonic time (one clock for every process on Linux) just before
#: each append
APPENDER = textwrap.dedent("""
    import sys, time
    from streamkit.transport import connect
    from streamkit.types import OutgoingRecord
    broker = connect(sys.argv[1])
    print("ready", flush=True)
    for line in sys.stdin:
        partition, delay = map(int, line.split())
        if delay >= 1000:
            time.sleep(delay / 1e6)
        elif delay:
            end = time.monotonic() + delay / 1e6
            while time.monotonic() < end:
                pass
        now = time.monotonic()
        broker.produce("t", [OutgoingRecord(None, str(now).encode(), None, None,
                                            partition)])
        print(now, flush=True)
""")


class Appender:
    """The appending process."""

    def __init__(self, url: str) -> None:
        self.proc = subprocess.Popen([PYTHON, "-c", APPENDER, url], env=subprocess_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None and self.proc.stdin is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def append(self, partition: int = 0, delay_us: int = 0) -> None:
        """Ask for one append (returns at once; the child appends after ``delay_us``)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{partition} {delay_us}\n")
        self.proc.stdin.flush()

    def sent_at(self) -> float:
        assert self.proc.stdout is not None
        return float(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


@pytest.fixture
def log_url(tmp_path: Path) -> Iterator[str]:
    url = f"log://{tmp_path}/log"
    broker = connect(url)
    broker.create_topic("t", partitions=4)
    broker.close()
    yield url


def _readers(url: str) -> dict[str, Callable[[float], list[Message]]]:
    """Ways to wait for the next record of topic t, each given a timeout."""
    broker = connect(url)
    offset = [0]

    def fetch(timeout: float) -> list[Message]:
        got = broker.fetch(TopicPartition("t", 0), offset[0], 10, timeout=timeout)
        offset[0] += len(got)
        return got

    grouped = streamkit.Consumer("t", broker=url, group_id="g",
                                 auto_offset_reset="earliest")
    ungrouped = streamkit.Consumer("t", broker=url, auto_offset_reset="earliest")
    return {
        "Broker.fetch": fetch,
        "Consumer.poll with a group": lambda timeout: [
            m for ms in grouped.poll(timeout * 1000).values() for m in ms],
        "Consumer.poll without a group": lambda timeout: [
            m for ms in ungrouped.poll(timeout * 1000).values() for m in ms],
    }


@pytest.mark.parametrize("reader", ["Broker.fetch", "Consumer.poll with a group",
                                    "Consumer.poll without a group"])
def test_a_blocked_reader_wakes_at_once_on_another_process_append(
        log_url: str, reader: str) -> None:
    wait = _readers(log_url)[reader]
    appender = Appender(log_url)
    try:
        assert wait(0.05) == []                 # caught up: the next read waits
        delays = []
        for _ in range(10):
            appender.append(0, delay_us=100_000)  # while the reader has waited 0.1 s
            got = wait(30.0)
            woke = time.monotonic()
            assert len(got) == 1
            delays.append(woke - appender.sent_at())
    finally:
        appender.close()
    # a reader that sleeps up to 20 ms between looks wakes ~10 ms late on average
    assert statistics.median(delays) < 0.005, delays
    assert max(delays) < 0.1, delays


def test_no_wake_up_is_lost_when_appends_race_the_wait(log_url: str) -> None:
    """Appends land just before, while and after the reader clears its watch, reads and
    arms its wait; a lost wake-up would leave the reader blocked until its timeout."""
    rng = random.Random(15)
    appender = Appender(log_url)
    consumer = connect(log_url).group_consumer("race", ["t"])
    broker = connect(log_url)
    try:
        for i in range(150):
            # the group member, reading 4 partitions: one appended to at random
            appender.append(rng.randrange(4), rng.choice([0, 0, 20, 50, 100, 300]))
            start = time.monotonic()
            assert len(consumer.poll(10, timeout=5.0)) == 1, f"append {i} was missed"
            assert time.monotonic() - start < 0.5, f"append {i} was seen late"
            appender.sent_at()
        offset = broker.offsets(TopicPartition("t", 0))[1]
        for i in range(150):
            # Broker.fetch, with a new watch (armed as the append comes) every 3rd time
            if i % 3 == 0:
                broker.close()
                broker = connect(log_url)
            appender.append(0, rng.choice([0, 0, 20, 50, 100, 300]))
            got = broker.fetch(TopicPartition("t", 0), offset, 10, timeout=5.0)
            assert len(got) == 1, f"append {i} was missed"
            offset += 1
            appender.sent_at()
    finally:
        appender.close()
        consumer.close()
        broker.close()


def test_memory_log_wakes_a_reader_on_an_append_in_another_thread() -> None:
    broker = connect("memory://wakeup-thread")
    broker.create_topic("t", partitions=2)
    consumer = broker.group_consumer("g", ["t"])
    writer = connect("memory://wakeup-thread")
    delays = []
    for i in range(20):
        sent = [0.0]

        def append(partition: int = i % 2, sent: list[float] = sent) -> None:
            time.sleep(0.1)
            sent[0] = time.monotonic()
            writer.produce("t", [(None, b"x", None, None, partition)])

        thread = threading.Thread(target=append)
        thread.start()
        got = consumer.poll(10, timeout=5.0)
        delays.append(time.monotonic() - sent[0])
        thread.join()
        assert len(got) == 1
    consumer.close()
    assert statistics.median(delays) < 0.005, delays


def test_a_reader_follows_a_deleted_and_recreated_topic(log_url: str) -> None:
    broker = connect(log_url)
    consumer = broker.group_consumer("g", ["t"])
    assert consumer.poll(10, timeout=0.1) == []     # watching t's partitions
    other = connect(log_url)
    other.delete_topic("t")
    assert consumer.poll(10, timeout=0.2) == []     # no crash, nothing to read
    other.create_topic("t", partitions=4)
    other.produce("t", [(None, b"again", None, None, 0)])
    got = consumer.poll(10, timeout=5.0)
    assert [m.value for m in got] == [b"again"]
    consumer.close()


def test_a_reader_follows_segment_rolls_of_another_process(tmp_path: Path) -> None:
    url = f"log://{tmp_path}/log"
    broker = connect(url)
    broker.create_topic("t", partitions=1, config={"segment.bytes": "200"})
    appender = Appender(url)
    offset = 0
    try:
        for _ in range(20):                      # most appends roll a new segment
            appender.append(0)
            got = broker.fetch(TopicPartition("t", 0), offset, 10, timeout=5.0)
            assert len(got) == 1
            offset += 1
            appender.sent_at()
    finally:
        appender.close()
    assert len(list((tmp_path / "log" / "t" / "0").glob("*.log"))) > 5


def test_a_forked_child_and_its_parent_both_wake(log_url: str) -> None:
    """A forked child gets its own inotify queue: sharing the parent's, one of the two
    would take the other's events and leave it asleep."""
    broker = connect(log_url)
    tp = TopicPartition("t", 0)
    assert broker.fetch(tp, 0, 10, timeout=0.05) == []      # the watch is set up
    appender = Appender(log_url)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:                                            # the child
        try:
            got = broker.fetch(tp, 0, 10, timeout=5.0)
            os.write(write_end, f"{len(got)} {time.monotonic()}".encode())
        finally:
            os._exit(0)
    try:
        appender.append(0, delay_us=300_000)     # both are waiting by then
        got = broker.fetch(tp, 0, 10, timeout=5.0)
        parent_woke = time.monotonic()
        sent = appender.sent_at()
        os.waitpid(pid, 0)
        count, child_woke = os.read(read_end, 100).decode().split()
    finally:
        appender.close()
    assert len(got) == 1 and count == "1"
    assert parent_woke - sent < 0.5 and float(child_woke) - sent < 0.5


def test_a_reader_waits_on_a_descriptor_past_1023(log_url: str) -> None:
    """A worker with many stores open has high descriptor numbers: select(2) refuses
    those past 1023, so the wait must not use it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the descriptor limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        broker = connect(log_url)
        start = time.monotonic()
        assert broker.fetch(TopicPartition("t", 0), 0, 10, timeout=0.2) == []
        assert time.monotonic() - start >= 0.19
        broker.produce("t", [(None, b"x", None, None, 0)])
        assert len(broker.fetch(TopicPartition("t", 0), 0, 10, timeout=5.0)) == 1
        broker.close()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
