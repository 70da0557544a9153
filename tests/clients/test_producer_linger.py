"""The Producer's linger timer: records are written without another send or a flush,
at interpreter exit, after a fork; acks=all batches are fsynced once, before their
futures resolve; many threads may send at once."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import streamkit
from streamkit.errors import UnknownTopic
from streamkit.log.storage import FilePartitionStore
from streamkit.transport import connect
from streamkit.types import TopicPartition


def _values(url: str, topic: str = "t") -> list[bytes | None]:
    broker = connect(url)
    try:
        out = []
        for p in range(broker.partition_count(topic) or 0):
            out += [m.value for m in broker.fetch(TopicPartition(topic, p), 0, 10_000)]
        return out
    finally:
        broker.close()


def _eventually(check, timeout: float = 5.0) -> float:
    """Seconds until ``check()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "not within the timeout"
        time.sleep(0.005)
    return time.monotonic() - start


def test_the_default_lingers_5_ms_and_the_timer_writes_the_last_record(url):
    producer = streamkit.Producer(broker=url)
    assert producer.linger_ms == 5
    futures = []
    for i in range(5):                        # a paced loop: one record every 20 ms
        futures.append(producer.send("t", value=b"%d" % i))
        time.sleep(0.02)
    # no send follows the last one, and no flush: the timer writes it
    _eventually(lambda: futures[-1].is_done)
    assert _values(url) == [b"%d" % i for i in range(5)]
    assert [f.get().offset for f in futures] == list(range(5))
    producer.close()


def test_records_wait_linger_ms_then_the_timer_writes_them(url):
    producer = streamkit.Producer(broker=url, linger_ms=500)
    connect(url).create_topic("t", partitions=1)
    first = producer.send("t", value=b"a")
    producer.send("t", value=b"b")
    time.sleep(0.1)
    assert not first.is_done and _values(url) == []       # still lingering
    waited = _eventually(lambda: first.is_done)
    assert _values(url) == [b"a", b"b"] and waited < 3
    producer.close()


def test_a_busy_send_loop_writes_once_linger_passed_without_the_timer(url):
    """A loop that keeps the GIL (the timer thread cannot run) still has its records
    written about linger_ms after they were sent: a send that finds the linger passed
    writes."""
    producer = streamkit.Producer(broker=url, linger_ms=2, batch_size=1_000_000)
    connect(url).create_topic("t", partitions=1)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(5.0)      # no forced thread switch in this loop
    try:
        sent = []
        end = time.monotonic() + 0.1
        while (now := time.monotonic()) < end:
            sent.append((now, producer.send("t", value=b"x")))
        # before any other thread could run: what was sent 30 ms ago is written (the
        # margin is for a loaded machine; without the write in send nothing is)
        late = [future for at, future in sent if at < end - 0.03 and not future.is_done]
    finally:
        sys.setswitchinterval(switch)
    assert late == []
    producer.close()
    assert connect(url).offsets(TopicPartition("t", 0)) == (0, len(sent))


def test_records_still_queued_at_interpreter_exit_are_written(tmp_path):
    url = f"log://{tmp_path / 'log'}"
    script = textwrap.dedent(f"""
        import streamkit
        producer = streamkit.Producer(broker={url!r}, linger_ms=60_000)
        for i in range(3):
            producer.send("t", value=b"%d" % i)
        # no flush, no close: the interpreter exits with the records queued
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert _values(url) == [b"0", b"1", b"2"]


def test_a_producer_dropped_without_close_writes_its_records_and_its_thread_ends(url):
    before = set(threading.enumerate())
    producer = streamkit.Producer(broker=url, linger_ms=20)
    future = producer.send("t", value=b"v")
    timer = set(threading.enumerate()) - before
    assert timer
    del producer
    _eventually(lambda: future.is_done)
    assert future.get().offset == 0 and _values(url) == [b"v"]
    _eventually(lambda: not any(thread.is_alive() for thread in timer))


def test_acks_all_futures_resolve_after_the_fsync_of_their_records(log_url, tmp_path):
    root = tmp_path / "log"
    connect(log_url).create_topic("t", partitions=2)
    seen = []

    def check(metadata):
        store = FilePartitionStore(root / "t" / str(metadata.partition))
        point = store.read_recovery()
        seen.append((store.read_synced(), (point.base, point.end)))
        store.close()

    producer = streamkit.Producer(broker=log_url, acks="all")
    for i in range(300):
        producer.send("t", value=b"%d" % i, key=b"%d" % i).add_callback(check)
    producer.flush()
    assert len(seen) == 300
    # when each future resolved, every byte written to its partition was fsynced
    assert all(synced == written for synced, written in seen)
    producer.close()


def test_acks_all_records_of_one_linger_window_share_an_fsync(log_url, monkeypatch):
    connect(log_url).create_topic("t", partitions=1)
    calls = []
    fsync = os.fsync

    def counted(fd):
        calls.append(fd)
        fsync(fd)

    monkeypatch.setattr(os, "fsync", counted)
    producer = streamkit.Producer(broker=log_url, acks="all")
    futures = [producer.send("t", value=b"%d" % i) for i in range(200)]
    _eventually(lambda: futures[-1].is_done)
    assert [f.get().offset for f in futures] == list(range(200))
    assert len(calls) <= 20               # one per batch, not one per record (200)
    producer.close()


def test_errors_reach_the_futures_of_their_records_only(url):
    producer = streamkit.Producer(broker=url, default_partitions=2)
    errors = []
    good = producer.send("t", value=b"a")
    bad = producer.send("t", value=b"b", partition=7)
    bad.add_errback(errors.append)
    after = producer.send("t", value=b"c")
    _eventually(lambda: bad.is_done and after.is_done)
    assert isinstance(errors[0], UnknownTopic) and bad.failed()
    with pytest.raises(UnknownTopic):
        bad.get()
    assert good.succeeded() and after.succeeded()
    assert sorted(_values(url)) == [b"a", b"c"]
    producer.close()


def test_threads_sending_at_once_get_each_record_written_once(url):
    producer = streamkit.Producer(broker=url, batch_size=100)
    results: list[list] = [[] for _ in range(4)]

    def send(n: int) -> None:
        for i in range(500):
            results[n].append(producer.send("t", value=b"%d-%d" % (n, i), partition=0))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    producer.flush()
    offsets = sorted(f.get().offset for futures in results for f in futures)
    assert offsets == list(range(2000))
    values = _values(url)
    assert len(values) == 2000
    for n in range(4):                    # each thread's records in its send order
        assert [v for v in values if v.startswith(b"%d-" % n)] == \
            [b"%d-%d" % (n, i) for i in range(500)]
    producer.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_has_its_own_timer(log_url):
    producer = streamkit.Producer(broker=log_url)
    producer.send("t", value=b"parent").get()             # the parent's timer runs
    pid = os.fork()
    if pid == 0:                                           # the child
        code = 1
        try:
            future = producer.send("t", value=b"child")
            deadline = time.monotonic() + 5
            while not future.is_done and time.monotonic() < deadline:
                time.sleep(0.005)
            code = 0 if future.succeeded() else 1
        finally:
            os._exit(code)                     # (no atexit: only the timer wrote it)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _values(log_url) == [b"parent", b"child"]
    producer.close()


def test_send_after_close_is_refused_and_close_twice_is_fine(url):
    producer = streamkit.Producer(broker=url)
    producer.send("t", value=b"v")
    producer.close()
    producer.close()
    assert _values(url) == [b"v"]
    with pytest.raises(streamkit.errors.InvalidConfig):
        producer.send("t", value=b"late")


def test_flush_writes_what_the_timer_took_too(log_url):
    producer = streamkit.Producer(broker=log_url, acks="all")
    futures = [producer.send("t", value=b"%d" % i) for i in range(50)]
    time.sleep(0.006)                      # the timer may be writing some of them
    producer.flush()
    assert all(f.is_done for f in futures)
    assert len(_values(log_url)) == 50
    producer.close()

