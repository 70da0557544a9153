"""Consumer groups of the embedded log, members in one process (log:// and memory://),
beyond the broker contract of tests/transport/test_group_contract.py: commits kept by the
log across a reopen, auto-commit inside poll, members that join at once (no coordinator,
decision 104) and own partitions from ``group_consumer()`` on, flock ownership."""
from __future__ import annotations

import time

import pytest

from streamkit.errors import BrokerError
from streamkit.log.groups import LogGroupConsumer
from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition


def _fill(broker, topic: str = "t", per_partition: int = 5, partitions: int = 4) -> None:
    broker.create_topic(topic, partitions=partitions)
    for p in range(partitions):
        broker.produce(topic, [OutgoingRecord(None, b"%d-%d" % (p, i), partition=p)
                               for i in range(per_partition)])


def _poll_until(member, predicate, timeout: float = 5.0) -> list:
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got += member.poll(max_records=500, timeout=0.01)
        if predicate(got):
            return got
    raise AssertionError(f"condition not met in {timeout}s; got {len(got)} messages")


def test_committed_offsets_survive_reopen(url):
    broker = connect(url)
    _fill(broker)
    member = broker.group_consumer("g", ["t"])
    _poll_until(member, lambda g: len(g) == 20)
    tp = TopicPartition("t", 1)
    member.commit({tp: 3})
    assert member.committed(tp) == 3
    member.commit()                       # current positions: 5 everywhere
    member.close(commit=False)
    broker.close()
    again = connect(url)
    again.produce("t", [OutgoingRecord(None, b"new", partition=2)])
    member = again.group_consumer("g", ["t"])
    got = _poll_until(member, lambda g: len(g) == 1)
    assert [(m.partition, m.offset, m.value) for m in got] == [(2, 5, b"new")]
    assert member.committed(tp) == 5
    offsets = {(o.topic, o.partition): o for o in again.group_offsets("g")}
    assert offsets[("t", 2)].committed == 5 and offsets[("t", 2)].end_offset == 6
    assert offsets[("t", 2)].lag == 1
    member.close()


def test_auto_commit_commits_positions_inside_poll(broker):
    _fill(broker)
    member = broker.group_consumer("g", ["t"], enable_auto_commit=True,
                                   auto_commit_interval=0.05)
    _poll_until(member, lambda g: len(g) == 20)
    assert member.committed(TopicPartition("t", 0)) is None or True
    time.sleep(0.06)
    member.poll(timeout=0)
    assert all(member.committed(TopicPartition("t", p)) == 5 for p in range(4))
    member.close(commit=False)


def test_no_commit_without_auto_commit(broker):
    _fill(broker)
    member = broker.group_consumer("g", ["t"], enable_auto_commit=False)
    _poll_until(member, lambda g: len(g) == 20)
    member.close(commit=False)
    assert all(o.committed is None for o in broker.group_offsets("g"))
    second = broker.group_consumer("g", ["t"])
    assert len(_poll_until(second, lambda g: len(g) == 20)) == 20
    second.close()


def test_join_and_leave_rebalance_without_a_coordinator(broker):
    _fill(broker)
    events = []
    a = broker.group_consumer("g", ["t"], session_timeout=1.0,
                              on_assign=lambda tps: events.append(("a+", sorted(tps))),
                              on_revoke=lambda tps: events.append(("a-", sorted(tps))))
    assert len(a.assignment()) == 4
    b = broker.group_consumer("g", ["t"], session_timeout=1.0)
    # a gives up two partitions on its next poll; b takes them once they are free
    got_a, got_b = [], []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(got_a) + len(got_b) < 20:
        got_a += a.poll(timeout=0.01)
        got_b += b.poll(timeout=0.01)
    assert len(a.assignment()) == 2 and len(b.assignment()) == 2
    assert a.assignment().isdisjoint(b.assignment())
    assert [e[0] for e in events] == ["a+", "a-"]
    assert len(got_a) == len(got_b) == 10
    assert {m.partition for m in got_a} == {tp.partition for tp in a.assignment()}
    assert {m.partition for m in got_b} == {tp.partition for tp in b.assignment()}
    b.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(a.assignment()) < 4:
        a.poll(timeout=0.01)
    assert len(a.assignment()) == 4
    assert events[-1][0] == "a+" and len(events[-1][1]) == 2
    a.close()


def test_member_that_stops_heartbeating_is_removed(url):
    broker = connect(url)
    _fill(broker)
    a = broker.group_consumer("g", ["t"], session_timeout=0.6)
    b = broker.group_consumer("g", ["t"], session_timeout=0.6)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(b.assignment()) < 2:
        a.poll(timeout=0.01)
        b.poll(timeout=0.01)
    assert len(b.assignment()) == 2
    # b hangs (no poll) holding its partitions; a notices the silence after
    # session_timeout, drops b from the group and takes b's partitions over at once
    # (decision 160): b, a zombie now, would otherwise keep them from the group
    time.sleep(0.8)
    a.poll(timeout=0.05)
    assert len(a.assignment()) == 4
    b.poll(timeout=0.01)              # b learns it was removed, lets go, rejoins
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        a.poll(timeout=0.01)
        b.poll(timeout=0.01)
        if len(a.assignment()) == 2 and len(b.assignment()) == 2:
            break
    assert a.assignment().isdisjoint(b.assignment())
    assert len(a.assignment() | b.assignment()) == 4
    # and the group is stable again: b is not removed over and over
    generation = a._generation
    deadline = time.monotonic() + 0.8
    while time.monotonic() < deadline:
        a.poll(timeout=0.01)
        b.poll(timeout=0.01)
    assert a._generation == b._generation == generation
    a.close()
    b.close()


def test_position_seek_pause_resume_before_the_first_poll(broker):
    _fill(broker, partitions=1, per_partition=10)
    member = broker.group_consumer("g", ["t"])
    tp = TopicPartition("t", 0)
    assert member.position(tp) == 0
    member.seek(tp, 7)
    assert [m.offset for m in member.poll(timeout=0.5)] == [7, 8, 9]
    assert member.position(tp) == 10
    member.seek(tp, 0)
    member.pause([tp])
    assert member.poll(timeout=0.05) == []
    member.resume([tp])
    assert len(member.poll(timeout=0.5)) == 10
    with pytest.raises(KeyError):
        member.position(TopicPartition("other", 0))
    member.close()


def test_a_group_is_deleted_only_without_live_members(broker):
    _fill(broker)
    member = broker.group_consumer("my group/1", ["t"])
    _poll_until(member, lambda g: len(g) == 20)
    member.commit()
    assert broker.list_groups() == ["my group/1"]
    with pytest.raises(BrokerError, match="live member"):
        broker.delete_group("my group/1")
    member.close()
    assert [o.committed for o in broker.group_offsets("my group/1")] == [5, 5, 5, 5]
    broker.delete_group("my group/1")
    assert broker.list_groups() == []
    assert broker.group_offsets("my group/1") == []


def test_member_subscribed_to_two_topics(broker):
    _fill(broker, "a", partitions=2)
    _fill(broker, "b", partitions=3)
    member = broker.group_consumer("g", ["a", "b"])
    got = _poll_until(member, lambda g: len(g) == 25)
    assert {m.topic for m in got} == {"a", "b"}
    member.close()


def test_group_consumer_creates_missing_topics(broker):
    member = broker.group_consumer("g", ["fresh"])
    assert broker.partition_count("fresh") == 4
    assert len(member.assignment()) == 4
    member.close()


def test_range_assignment_per_topic_over_sorted_members():
    from streamkit.log.groups import range_assignment
    got = range_assignment({"m2": ["a", "b"], "m1": ["a"]}, {"a": 5, "b": 2})
    assert got == {"m1": [["a", 0], ["a", 1], ["a", 2]],
                   "m2": [["a", 3], ["a", 4], ["b", 0], ["b", 1]]}


def test_partition_is_not_taken_before_its_owner_revoked_it(broker):
    _fill(broker)
    seen_during_revoke = []
    b_holder = {}

    def on_revoke(tps):
        # while a is still revoking, b polls: it must not own a's partitions yet
        b = b_holder.get("b")
        if b is not None:
            b.poll(timeout=0)
            seen_during_revoke.append(set(tps) & b.assignment())

    a = broker.group_consumer("g", ["t"], on_revoke=on_revoke)
    b = broker.group_consumer("g", ["t"])
    b_holder["b"] = b
    assert b.assignment() == set()             # a has not let go of anything yet
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(b.assignment()) < 2:
        a.poll(timeout=0.01)
        b.poll(timeout=0.01)
    assert seen_during_revoke == [set()]
    assert len(b.assignment()) == 2 and a.assignment().isdisjoint(b.assignment())
    a.close()
    b.close()


def test_partitions_of_one_number_are_taken_together(broker):
    # Tables open a store per partition number, whichever topic brought it. Mid-
    # rebalance another member (here a bare handle on the group) may still hold y[2]:
    # then this member must not take x[2] either, or both would open table partition 2.
    _fill(broker, "x")
    _fill(broker, "y")
    other = broker._group_store("g")
    other.register("other")
    with other.locked():               # a member (of no topic now): it is let go of
        state = other.read_state()
        state["members"]["other"] = {"topics": []}
        other.write_state(state)
    assert other.acquire(TopicPartition("y", 2), "other")
    assigned: list[list[TopicPartition]] = []
    member = broker.group_consumer("g", ["x", "y"], on_assign=assigned.append)
    everything = {TopicPartition(t, p) for t in "xy" for p in range(4)}
    member.poll(timeout=0.05)
    assert member.assignment() == everything - {TopicPartition("x", 2),
                                                TopicPartition("y", 2)}
    other.release(TopicPartition("y", 2), "other")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and member.assignment() != everything:
        member.poll(timeout=0.01)
    assert member.assignment() == everything
    for tps in assigned:   # every call brings both topics' partition N, or neither
        numbers = {tp.partition for tp in tps}
        assert set(tps) == {TopicPartition(t, p) for t in "xy" for p in numbers}
    assert assigned[-1] == [TopicPartition("x", 2), TopicPartition("y", 2)]
    member.close()
    other.unregister("other")


def test_a_failed_acquire_gives_back_the_flocks_already_taken(broker):
    # An OS error while taking y[1] (say, out of file descriptors) must not leave x[1]
    # held but unread: its next owner would wait for it as long as this member lives.
    _fill(broker, "x")
    _fill(broker, "y")
    store = broker._group_store("g")
    real_acquire = store.acquire
    failures = [TopicPartition("y", 1)]

    def acquire(tp, member_id):
        if tp in failures:
            failures.remove(tp)
            raise OSError(24, "Too many open files")
        return real_acquire(tp, member_id)

    store.acquire = acquire
    with pytest.raises(OSError, match="Too many open files"):
        LogGroupConsumer(broker, store, "g", ["x", "y"])
    other = broker._group_store("g")
    other.register("other")
    for tp in [TopicPartition(t, p) for t in "xy" for p in range(4)]:
        assert other.acquire(tp, "other"), tp      # nothing was left held
    other.unregister("other")
