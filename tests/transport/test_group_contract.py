"""The broker contract, part 2: consumer groups. Members join and split the
partitions, rebalance when one leaves, commit offsets that outlive a consumer, pause,
resume and seek; groups are listed and deleted. Each test runs on ``log://``,
``memory://`` and ``kafka://`` (tests/transport/conftest.py). What the embedded log's
groups do beyond this is in tests/log/test_groups.py; Kafka's, in test_kafka_groups.py."""
from __future__ import annotations

import time

from streamkit.types import OutgoingRecord, TopicPartition

from .groups import SESSION, _fill, _group, _poll_until


def test_one_member_reads_everything_and_commits(broker, topic_name):
    _fill(broker, topic_name)
    assigned, revoked = [], []
    group = _group()
    consumer = broker.group_consumer(group, [topic_name], session_timeout=SESSION,
                                     on_assign=assigned.extend, on_revoke=revoked.extend)
    [got] = _poll_until([consumer], lambda g: len(g[0]) == 40)
    assert {m.tp for m in got} == {TopicPartition(topic_name, p) for p in range(4)}
    for p in range(4):
        offsets = [m.offset for m in got if m.partition == p]
        assert offsets == list(range(10))     # offset order per partition
    assert consumer.group_id == group
    assert consumer.member_id
    assert sorted(assigned) == [TopicPartition(topic_name, p) for p in range(4)]
    assert consumer.assignment() == set(assigned)
    tp0 = TopicPartition(topic_name, 0)
    assert consumer.position(tp0) == 10
    assert consumer.committed(tp0) is None

    consumer.commit({tp0: 7})
    assert consumer.committed(tp0) == 7
    consumer.commit()                                  # current positions
    assert consumer.committed(tp0) == 10
    assert group in broker.list_groups()
    lag = {(o.topic, o.partition): o for o in broker.group_offsets(group)}
    assert lag[(topic_name, 0)].committed == 10
    assert lag[(topic_name, 0)].end_offset == 10
    assert lag[(topic_name, 0)].lag == 0
    consumer.close()
    assert sorted(revoked) == sorted(assigned)         # close revokes before leaving


def test_commits_survive_a_new_consumer(broker, topic_name):
    _fill(broker, topic_name, n=20)
    group = _group()
    first = broker.group_consumer(group, [topic_name], session_timeout=SESSION)
    _poll_until([first], lambda g: len(g[0]) == 20)
    first.commit({TopicPartition(topic_name, p): 3 for p in range(4)})
    first.close(commit=False)

    second = broker.group_consumer(group, [topic_name], session_timeout=SESSION)
    [got] = _poll_until([second], lambda g: len(g[0]) == 8)
    assert sorted((m.partition, m.offset) for m in got) == \
        [(p, o) for p in range(4) for o in (3, 4)]
    assert second.committed(TopicPartition(topic_name, 2)) == 3
    second.close()


def test_two_members_split_partitions_and_rebalance_when_one_closes(broker, topic_name):
    _fill(broker, topic_name, n=40)
    group = _group()
    events: dict[str, list] = {"a": [], "b": []}

    def member(name):
        return broker.group_consumer(
            group, [topic_name], session_timeout=SESSION,
            on_assign=lambda tps: events[name].append(("assign", sorted(tps))),
            on_revoke=lambda tps: events[name].append(("revoke", sorted(tps))))

    a, b = member("a"), member("b")
    all_tps = {TopicPartition(topic_name, p) for p in range(4)}

    def split(_got):
        return (a.assignment() and b.assignment()
                and a.assignment() | b.assignment() == all_tps
                and not a.assignment() & b.assignment())

    _poll_until([a, b], split)
    assert len(a.assignment()) == 2 and len(b.assignment()) == 2
    # Once split, each member reads only the partitions it owns.
    broker.produce(topic_name, [OutgoingRecord(b"split", b"x", partition=p)
                                for p in range(4)])
    got = _poll_until([a, b], lambda g: sum(m.key == b"split" for m in g[0] + g[1]) == 4)
    for consumer, messages in zip((a, b), got):
        assert {m.tp for m in messages if m.key == b"split"} == consumer.assignment()
    b_before = set(b.assignment())
    b.commit()
    b.close()
    assert events["b"][-1] == ("revoke", sorted(b_before))

    _poll_until([a], lambda _g: a.assignment() == all_tps)
    assert ("assign", sorted(b_before)) in events["a"] or \
        ("assign", sorted(all_tps)) in events["a"]
    # The survivor reads everything the group has not committed, with nothing lost.
    broker.produce(topic_name, [OutgoingRecord(b"late", b"x", partition=p)
                                for p in range(4)])
    rest = _poll_until([a], lambda g: sum(m.key == b"late" for m in g[0]) == 4)
    assert {m.partition for m in rest[0] if m.key == b"late"} == {0, 1, 2, 3}
    a.close()


def test_pause_resume_and_seek(broker, topic_name):
    _fill(broker, topic_name, n=8, partitions=2)
    consumer = broker.group_consumer(_group(), [topic_name], session_timeout=SESSION)
    tp0, tp1 = TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)
    _poll_until([consumer], lambda g: len(g[0]) == 8)

    consumer.pause([tp0])
    broker.produce(topic_name, [OutgoingRecord(b"p", b"x", partition=0),
                                OutgoingRecord(b"p", b"y", partition=1)])
    [got] = _poll_until([consumer], lambda g: len(g[0]) >= 1, timeout=10)
    time.sleep(0.3)
    got.extend(consumer.poll(100, 0.2))
    assert {m.partition for m in got} == {1}
    consumer.resume([tp0])
    [got] = _poll_until([consumer], lambda g: len(g[0]) >= 1, timeout=10)
    assert [(m.partition, m.offset) for m in got] == [(0, 4)]

    consumer.seek(tp1, 1)
    [got] = _poll_until([consumer], lambda g: len(g[0]) >= 4, timeout=10)
    assert [(m.partition, m.offset) for m in got] == [(1, 1), (1, 2), (1, 3), (1, 4)]
    assert consumer.position(tp1) == 5
    consumer.close()


def test_auto_commit_commits_consumed_positions(broker, topic_name):
    _fill(broker, topic_name, n=12, partitions=2)
    group = _group()
    consumer = broker.group_consumer(group, [topic_name], session_timeout=SESSION,
                                     enable_auto_commit=True, auto_commit_interval=0.2)
    _poll_until([consumer], lambda g: len(g[0]) == 12)
    tp = TopicPartition(topic_name, 0)
    deadline = time.monotonic() + 10
    while consumer.committed(tp) != 6 and time.monotonic() < deadline:
        consumer.poll(10, 0.1)
    assert consumer.committed(tp) == 6
    consumer.close()


def test_latest_reset_skips_existing_records(broker, topic_name):
    _fill(broker, topic_name, n=8, partitions=2)
    consumer = broker.group_consumer(_group(), [topic_name], session_timeout=SESSION,
                                     auto_offset_reset="latest")
    _poll_until([consumer], lambda g: len(consumer.assignment()) == 2)
    assert consumer.position(TopicPartition(topic_name, 0)) == 4
    time.sleep(0.5)
    consumer.poll(100, 0.2)
    broker.produce(topic_name, [OutgoingRecord(b"new", b"x", partition=0)])
    [got] = _poll_until([consumer], lambda g: len(g[0]) >= 1)
    assert [(m.key, m.offset) for m in got] == [(b"new", 4)]
    consumer.close()


def test_delete_group(broker, topic_name):
    _fill(broker, topic_name, n=4, partitions=1)
    group = _group()
    consumer = broker.group_consumer(group, [topic_name], session_timeout=SESSION)
    _poll_until([consumer], lambda g: len(g[0]) == 4)
    consumer.commit()
    consumer.close()
    assert group in broker.list_groups()
    broker.delete_group(group)
    assert group not in broker.list_groups()
    assert broker.group_offsets(group) == []
    broker.delete_group(group)     # gone already: nothing to do


def test_copartitioned_members_get_the_same_numbers_of_every_topic(broker, topic_name):
    # Tables keep partition N wherever partition N of any topic is: with three members
    # on two 4-partition topics, each member's numbers must match across the topics.
    x, y = f"{topic_name}-x", f"{topic_name}-y"
    _fill(broker, x)
    _fill(broker, y)
    group = _group()
    members = [broker.group_consumer(group, [x, y], session_timeout=SESSION,
                                     copartitioned=True) for _ in range(3)]
    everything = {TopicPartition(t, p) for t in (x, y) for p in range(4)}

    def settled(_got):
        held = [m.assignment() for m in members]
        return all(held) and set().union(*held) == everything and \
            sum(len(h) for h in held) == len(everything)

    _poll_until(members, settled, timeout=40)
    for member in members:
        numbers = {t: {tp.partition for tp in member.assignment() if tp.topic == t}
                   for t in (x, y)}
        assert numbers[x] == numbers[y], numbers
    for member in members:
        member.close()


def test_commit_offsets_without_a_member(broker, topic_name):
    """A consumer of manually assigned partitions commits for its group without
    joining it; a member that joins later starts there."""
    _fill(broker, topic_name)
    group = _group()
    tp0, tp1 = TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)
    broker.commit_offsets(group, {tp0: 4})
    broker.commit_offsets(group, {tp1: 6})            # merged with the first
    assert {(o.partition, o.committed) for o in broker.group_offsets(group)} == \
        {(0, 4), (1, 6)}
    member = broker.group_consumer(group, [topic_name], session_timeout=SESSION,
                                   auto_offset_reset="earliest")
    [got] = _poll_until([member], lambda g: len(g[0]) == 40 - 4 - 6)
    assert min(m.offset for m in got if m.partition == 0) == 4
    member.close()
