"""Transactions on the embedded log: markers, the last stable offset, aborted
transactions hidden from read_committed readers, fencing, timeouts, group offsets,
compaction and the transaction index on disk (issue 19)."""
from __future__ import annotations

import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from streamkit.errors import (CorruptRecord, InvalidTxnState, ProducerFenced,
                              TransactionAborted)
from streamkit.log.broker import open_log_broker
from streamkit.log.partition import Partition
from streamkit.types import OutgoingRecord, TopicPartition

from .conftest import PYTHON, subprocess_env

TP = TopicPartition("t", 0)
RC = "read_committed"


def records(*values: str, key: bytes | None = None) -> list[OutgoingRecord]:
    return [OutgoingRecord(key, v.encode(), partition=0) for v in values]


def values(broker, isolation: str = "read_uncommitted", tp: TopicPartition = TP,
           offset: int = 0) -> list[str]:
    return [m.value.decode() for m in broker.fetch(tp, offset, 1000,
                                                   isolation_level=isolation)]


@pytest.fixture
def broker(url):
    b = open_log_broker(url)
    b.create_topic("t", 1)
    yield b
    b.close()


def test_commit_is_seen_abort_is_not_and_markers_never(broker):
    tx = broker.transactional_producer("tx")
    tx.begin()
    tx.send("t", records("a1", "a2"))
    tx.commit()
    tx.begin()
    tx.send("t", records("b1"))
    tx.abort()
    broker.produce("t", records("plain"))
    assert values(broker, RC) == ["a1", "a2", "plain"]
    # read_uncommitted sees the aborted record too, and neither sees a marker
    assert values(broker) == ["a1", "a2", "b1", "plain"]
    # (offsets 2 and 4 are the markers)
    assert [m.offset for m in broker.fetch(TP, 0, 100)] == [0, 1, 3, 5]


def test_an_open_transaction_holds_read_committed_readers_at_its_first_offset(broker):
    broker.produce("t", records("before"))
    tx = broker.transactional_producer("tx")
    tx.begin()
    tx.send("t", records("inside"))
    broker.produce("t", records("after"))           # not transactional, but later
    assert values(broker, RC) == ["before"]
    assert values(broker, RC, offset=1) == []
    assert values(broker) == ["before", "inside", "after"]
    tx.commit()
    assert values(broker, RC) == ["before", "inside", "after"]


def test_interleaved_committed_and_aborted_transactions_on_one_partition(broker):
    one = broker.transactional_producer("one")
    two = broker.transactional_producer("two")
    one.begin()
    two.begin()
    one.send("t", records("1a"))
    two.send("t", records("2a"))
    one.send("t", records("1b"))
    two.send("t", records("2b"))
    two.abort()
    assert values(broker, RC) == []                 # "one" is still open
    one.commit()
    one.begin()
    two.begin()
    two.send("t", records("2c"))
    one.send("t", records("1c"))
    two.commit()
    one.abort()
    assert values(broker, RC) == ["1a", "1b", "2c"]
    assert values(broker, RC, offset=3) == ["2c"]


def test_a_new_producer_with_the_same_id_fences_the_old_one(broker):
    broker.create_topic("u", 1)
    old = broker.transactional_producer("tx")
    old.begin()
    old.send("t", records("zombie"))
    new = broker.transactional_producer("tx")      # aborts what "old" left open
    assert values(broker, RC) == []
    assert values(broker) == ["zombie"]
    with pytest.raises(ProducerFenced, match=r"t\[0\].*epoch 1"):
        old.send("t", records("late"))              # a partition it wrote to
    with pytest.raises(ProducerFenced, match="fenced by epoch 1"):
        old.send("u", records("late"))              # one it did not
    with pytest.raises(ProducerFenced):
        old.commit()
    new.begin()
    new.send("t", records("fresh"))
    new.commit()
    assert values(broker, RC) == ["fresh"]
    old.close()                                     # quiet: it is fenced


def test_transaction_calls_out_of_order_are_refused(broker):
    tx = broker.transactional_producer("tx")
    with pytest.raises(InvalidTxnState, match="begin"):
        tx.send("t", records("x"))
    tx.begin()
    with pytest.raises(InvalidTxnState, match="already open"):
        tx.begin()
    tx.commit()
    with pytest.raises(InvalidTxnState):
        tx.commit()


def test_group_offsets_commit_with_the_transaction_only(broker):
    tx = broker.transactional_producer("tx")
    tx.begin()
    tx.send("t", records("out"))
    tx.add_offsets("g", {TopicPartition("in", 0): 7})
    tx.abort()
    assert broker.group_offsets("g") == []
    tx.begin()
    tx.add_offsets("g", {TopicPartition("in", 0): 9})
    tx.commit()
    store = broker.group_store("g")
    try:
        assert store.read_offsets() == {TopicPartition("in", 0): 9}
    finally:
        store.close()


def _member_with_offsets_in_a_transaction(broker):
    broker.create_topic("in", 1)
    member = broker.group_consumer("g", ["in"])
    member.poll(0.5)
    assert TopicPartition("in", 0) in member.assignment()
    tx = broker.transactional_producer("tx")
    tx.begin()
    tx.send("t", records("done by the member"))
    tx.send_offsets(member, {TopicPartition("in", 0): 1})
    return member, tx


def _move_partition_on(broker, member, remove: bool) -> None:
    """The group gives the member's partition to no one yet (a new generation), and
    with ``remove`` drops the member too (it missed its session)."""
    store = broker.group_store("g")
    try:
        with store.locked():
            state = store.read_state()
            state["assignment"][member.member_id] = []
            if remove:
                del state["members"][member.member_id]
            store.write_state(state)
    finally:
        store.close()


def test_a_member_dropped_from_its_group_cannot_commit(broker):
    member, tx = _member_with_offsets_in_a_transaction(broker)
    _move_partition_on(broker, member, remove=True)
    with pytest.raises(TransactionAborted, match=r"no longer owns in\[0\]"):
        tx.commit()
    assert values(broker, RC) == []
    member.close()


def test_a_member_giving_its_partition_up_commits_it_before_letting_go(broker):
    """A rebalance: the new assignment is written first, then the member, still in
    the group and still holding the partition (no one else can take it), commits what
    it did with it in its revoke callback."""
    member, tx = _member_with_offsets_in_a_transaction(broker)
    _move_partition_on(broker, member, remove=False)
    tx.commit()
    assert values(broker, RC) == ["done by the member"]
    assert broker.group_offsets("g")[0].committed == 1
    member.close()


def test_offsets_an_open_transaction_holds_are_pending_until_it_ends(broker):
    """What OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT for."""
    coordinator = broker.transactions()
    tx = broker.transactional_producer("tx")
    other = broker.transactional_producer("other", timeout_ms=300)
    assert coordinator.pending_offsets("g") == set()
    tx.begin()
    tx.add_offsets("g", {TopicPartition("in", 0): 7, TopicPartition("in", 1): 3})
    other.begin()
    other.add_offsets("h", {TopicPartition("in", 2): 1})       # another group
    assert coordinator.pending_offsets("g") == {TopicPartition("in", 0),
                                                TopicPartition("in", 1)}
    tx.commit()
    assert coordinator.pending_offsets("g") == set()
    tx.begin()
    tx.add_offsets("g", {TopicPartition("in", 0): 9})
    assert coordinator.pending_offsets("g") == {TopicPartition("in", 0)}
    tx.abort()
    assert coordinator.pending_offsets("g") == set()
    assert coordinator.pending_offsets("h") == {TopicPartition("in", 2)}
    time.sleep(0.4)                 # past its timeout: aborted at the look
    assert coordinator.pending_offsets("h") == set()
    with pytest.raises(ProducerFenced):
        other.commit()
    store = broker.group_store("g")
    try:
        assert store.read_offsets() == {TopicPartition("in", 0): 7,
                                        TopicPartition("in", 1): 3}
    finally:
        store.close()


def test_a_transaction_past_its_timeout_is_aborted_by_a_waiting_reader(broker):
    tx = broker.transactional_producer("slow", timeout_ms=300)
    tx.begin()
    tx.send("t", records("never"))
    broker.produce("t", records("later"))
    started = time.monotonic()
    got = broker.fetch(TP, 0, 100, timeout=5.0, isolation_level=RC)
    assert [m.value for m in got] == [b"later"]
    assert time.monotonic() - started < 3.0
    with pytest.raises(ProducerFenced):
        tx.commit()


def test_compaction_keeps_the_committed_value_under_a_later_aborted_one(tmp_path):
    broker = open_log_broker(f"log://{tmp_path}/log")
    broker.create_topic("c", 1, config={"cleanup.policy": "compact"})
    tp = TopicPartition("c", 0)
    tx = broker.transactional_producer("tx")
    for value, commit in (("v1", True), ("v2", True), ("v3-aborted", False)):
        tx.begin()
        tx.send("c", [OutgoingRecord(b"k", value.encode(), partition=0)])
        tx.commit() if commit else tx.abort()
    broker.cleanup("c")
    assert values(broker, RC, tp) == ["v2"]
    assert values(broker, tp=tp) == ["v2"]          # the aborted record is gone too
    broker.close()


def aborted_on_disk(tmp_path, value: str) -> tuple[str, Path]:
    """A log with one aborted transaction of ``value`` on t[0]: its URL, and the
    path of the partition's transaction index."""
    url = f"log://{tmp_path}/log"
    broker = open_log_broker(url)
    broker.create_topic("t", 1)
    tx = broker.transactional_producer("tx")
    tx.begin()
    tx.send("t", records(value))
    tx.abort()
    broker.close()
    return url, tmp_path / "log" / "t" / "0" / "transactions"


def test_the_index_survives_a_restart_and_a_torn_entry_is_cut(tmp_path):
    url, index = aborted_on_disk(tmp_path, "gone")
    with index.open("ab") as f:
        f.write(b"\x01\x02\x03")                    # a writer killed mid-entry
    again = open_log_broker(url)
    assert values(again, RC) == []
    tx = again.transactional_producer("tx")
    tx.begin()
    tx.send("t", records("kept"))
    tx.commit()
    assert values(again, RC) == ["kept"]
    assert index.stat().st_size % 39 == 0
    again.close()


def test_a_damaged_index_entry_is_reported_not_cut(tmp_path):
    url, index = aborted_on_disk(tmp_path, "x")
    data = bytearray(index.read_bytes())
    data[5] ^= 0xFF
    index.write_bytes(bytes(data))
    again = open_log_broker(url)
    with pytest.raises(CorruptRecord, match=r"transaction index: t\[0\] entry 0"):
        again.fetch(TP, 0, 10, isolation_level=RC)
    assert values(again) == ["x"]                   # read_uncommitted still reads
    assert index.read_bytes() == bytes(data)
    again.close()


def test_a_producer_killed_in_its_transaction_is_aborted_after_its_timeout(tmp_path):
    url = f"log://{tmp_path}/log"
    broker = open_log_broker(url)
    broker.create_topic("t", 1)
    child = textwrap.dedent(f"""
        import os
        from streamkit.log.broker import open_log_broker
        from streamkit.types import OutgoingRecord
        b = open_log_broker({url!r})
        tx = b.transactional_producer("worker", timeout_ms=500)
        tx.begin()
        tx.send("t", [OutgoingRecord(None, b"half done", partition=0)])
        os._exit(9)
    """)
    subprocess.run([PYTHON, "-c", child], env=subprocess_env(), check=False, timeout=60)
    broker.produce("t", records("after the crash"))
    got = broker.fetch(TP, 0, 100, timeout=10.0, isolation_level=RC)
    assert [m.value for m in got] == [b"after the crash"]
    # a restarted producer with the same id would not have had to wait
    assert (Path(tmp_path) / "log" / "__transactions").is_dir()
    broker.close()


def test_a_restarted_producer_aborts_what_its_predecessor_left_open(tmp_path):
    url = f"log://{tmp_path}/log"
    broker = open_log_broker(url)
    broker.create_topic("t", 1)
    child = textwrap.dedent(f"""
        import os
        from streamkit.log.broker import open_log_broker
        from streamkit.types import OutgoingRecord
        b = open_log_broker({url!r})
        tx = b.transactional_producer("worker")
        tx.begin()
        tx.send("t", [OutgoingRecord(None, b"half done", partition=0)])
        os._exit(9)
    """)
    subprocess.run([PYTHON, "-c", child], env=subprocess_env(), check=False, timeout=60)
    tx = broker.transactional_producer("worker")
    tx.begin()
    tx.send("t", records("redone"))
    tx.commit()
    assert values(broker, RC) == ["redone"]
    broker.close()


def test_a_new_epoch_writing_over_an_unended_transaction_aborts_it(broker):
    """The coordinator ends every transaction before a new epoch writes; if one was
    left without a marker all the same, the partition takes it as aborted, never as
    committed."""
    log = broker._partition(TP)
    log.append(records("left open"), producer=(7, 0))
    log.append(records("new epoch"), producer=(7, 1))
    log.write_marker((7, 1), commit=True)
    assert values(broker, RC) == ["new epoch"]
    with pytest.raises(ProducerFenced):
        log.append(records("old epoch again"), producer=(7, 0))


def test_retention_shortens_the_index_and_reads_stay_right(tmp_path):
    broker = open_log_broker(f"log://{tmp_path}/log")
    broker.create_topic("r", 1, config={"segment.bytes": "200", "retention.bytes": "400"})
    tp = TopicPartition("r", 0)
    tx = broker.transactional_producer("tx")
    for n in range(30):
        tx.begin()
        tx.send("r", [OutgoingRecord(None, f"v{n}".encode() * 10, partition=0)])
        tx.commit() if n % 2 else tx.abort()
    index = tmp_path / "log" / "r" / "0" / "transactions"
    before = index.stat().st_size
    broker.cleanup("r")
    start = broker.offsets(tp)[0]
    assert start > 0
    assert index.stat().st_size < before
    kept = [m.value.decode()[:3] for m in broker.fetch(tp, start, 100, isolation_level=RC)]
    assert kept and all(int(v[1:].rstrip("v")) % 2 for v in kept)   # only the commits
    tx.begin()
    tx.send("r", [OutgoingRecord(None, b"after", partition=0)])
    tx.commit()
    assert broker.fetch(tp, start, 100, isolation_level=RC)[-1].value == b"after"
    broker.close()


def test_a_write_after_the_coordinator_aborted_the_transaction_is_fenced(broker):
    """A producer told the coordinator of a partition but had not written to it when
    its transaction was aborted (by a newer producer of its id, or a timeout): its
    late write is fenced, and opens no transaction that no marker would end."""
    old = broker.transactional_producer("tx")
    old.begin()
    old._enlist([TP])                               # told, not yet written
    broker.transactional_producer("tx")             # aborts it with a new epoch
    with pytest.raises(ProducerFenced):
        broker._partition(TP).append(records("late"), producer=old.producer)
    broker.produce("t", records("plain"))
    assert values(broker, RC) == ["plain"]


def test_offsets_read_while_a_commit_is_under_way_come_after_it(tmp_path, monkeypatch):
    """A commit that passed the zombie check holds its group's lock until its offsets
    are written: a member taking the partition over (which reads the offsets under
    that lock) starts where the commit ends, never before it."""
    url = f"log://{tmp_path}/log"
    broker = open_log_broker(url)
    broker.create_topic("t", 1)
    broker.create_topic("in", 1)
    member = broker.group_consumer("g", ["in"])
    tx = broker.transactional_producer("tx")
    tx.begin()
    tx.send("t", records("out"))
    tx.send_offsets(member, {TopicPartition("in", 0): 5})
    reader = textwrap.dedent(f"""
        from streamkit.log.broker import open_log_broker
        store = open_log_broker({url!r}).group_store("g")
        print("ready", flush=True)
        with store.locked():
            print(store.read_offsets(), flush=True)
    """)
    seen: list[str] = []
    write_marker = Partition.write_marker

    def marker_with_a_reader_waiting(self, *args, **kwargs):
        if not seen:                     # a new owner reads the offsets now
            child = subprocess.Popen([PYTHON, "-c", reader], env=subprocess_env(),
                                     stdout=subprocess.PIPE, text=True)
            seen.append(child.stdout.readline())
            time.sleep(0.5)              # (time to read, were it not held off)
            seen.append(child)
        return write_marker(self, *args, **kwargs)

    monkeypatch.setattr(Partition, "write_marker", marker_with_a_reader_waiting)
    tx.commit()
    child = seen[1]
    out, _ = child.communicate(timeout=30)
    assert seen[0] == "ready\n"
    assert out.strip() == str({TopicPartition("in", 0): 5})
    member.close()
    broker.close()


def test_a_member_takes_a_partition_where_a_dead_producers_prepared_commit_ends(
        url):
    """A producer killed inside its commit (state ``prepare_commit``) leaves the
    offsets of the commit to be written: a read_committed member taking the
    partition finishes that commit first and starts after it."""
    broker = open_log_broker(url)
    broker.create_topic("t", 1)
    broker.create_topic("in", 1)
    broker.produce("in", records(*"abcdefgh"))
    tx = broker.transactional_producer("tx")
    tx.begin()
    tx.send("t", records("out"))
    tx.add_offsets("g", {TopicPartition("in", 0): 6})
    coordinator = broker.transactions()
    with coordinator._store.locked("tx"):        # it died once this was durable
        state = coordinator._store.read("tx")
        state["state"] = "prepare_commit"
        coordinator._store.write(state)
    member = broker.group_consumer("g", ["in"], isolation_level=RC)
    assert member.position(TopicPartition("in", 0)) == 6
    assert values(broker, RC) == ["out"]
    member.close()
    broker.close()
