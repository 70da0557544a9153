"""Transactions through ``streamkit broker`` with confluent-kafka (librdkafka 2.x): a
transactional producer commits and aborts, a read_committed consumer sees only what was
committed (and moves past the markers to the end), a newer producer with the same
transactional.id fences the older one, and ``send_offsets_to_transaction`` commits a
group's offsets with the transaction's records (decisions 960-962)."""
from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError,  # noqa: E402
                             KafkaException, Producer)
from confluent_kafka import TopicPartition as KafkaPartition  # noqa: E402

from streamkit.types import TopicPartition  # noqa: E402
from tests.wire.conftest import Wire  # noqa: E402


def transactional(wire: Wire, transactional_id: str, **conf: object) -> Producer:
    producer = Producer({"bootstrap.servers": wire.bootstrap,
                         "transactional.id": transactional_id, "linger.ms": 5, **conf})
    producer.init_transactions(10)
    return producer


def read(wire: Wire, topic: str, isolation: str, partitions: int = 1,
         seconds: float = 10.0) -> tuple[list[bytes], dict[int, int]]:
    """Every record a consumer of ``isolation`` reads from the start, until it reached
    the end of each partition; and the position it got to in each."""
    consumer = Consumer({"bootstrap.servers": wire.bootstrap, "group.id": "unused",
                         "isolation.level": isolation, "enable.partition.eof": True,
                         "enable.auto.commit": False})
    consumer.assign([KafkaPartition(topic, p, OFFSET_BEGINNING)
                     for p in range(partitions)])
    values: list[bytes] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + seconds
    while len(at_end) < partitions:
        assert time.monotonic() < deadline, f"not at the end after {seconds} s: {values}"
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
            at_end.add(msg.partition())
            continue
        values.append(msg.value())
    positions = {tp.partition: tp.offset for tp in consumer.position(
        [KafkaPartition(topic, p) for p in range(partitions)])}
    consumer.close()
    return values, positions


def test_committed_records_are_read_aborted_ones_are_not(wire: Wire) -> None:
    wire.log.create_topic("payments", 1)
    producer = transactional(wire, "payments-tx")
    producer.begin_transaction()
    for i in range(3):
        producer.produce("payments", value=b"kept-%d" % i)
    producer.commit_transaction(10)
    producer.begin_transaction()
    for i in range(2):
        producer.produce("payments", value=b"dropped-%d" % i)
    producer.flush(10)                   # (written to the log, then aborted)
    producer.abort_transaction(10)
    producer.begin_transaction()
    producer.produce("payments", value=b"kept-3")
    producer.commit_transaction(10)

    committed, positions = read(wire, "payments", "read_committed")
    assert committed == [b"kept-0", b"kept-1", b"kept-2", b"kept-3"]
    # 4 kept, 2 aborted and 3 markers: the consumer moved past the last marker
    end = wire.log.offsets(TopicPartition("payments", 0))[1]
    assert end == 9
    assert positions == {0: end}
    uncommitted, positions = read(wire, "payments", "read_uncommitted")
    assert uncommitted == [b"kept-0", b"kept-1", b"kept-2", b"dropped-0", b"dropped-1",
                           b"kept-3"]
    assert positions == {0: end}
    # the log's own read_committed readers see the same
    got = wire.log.fetch(TopicPartition("payments", 0), 0, 100,
                         isolation_level="read_committed")
    assert [m.value for m in got] == committed


def test_an_open_transaction_holds_back_read_committed_readers(wire: Wire) -> None:
    wire.log.create_topic("orders", 1)
    plain = Producer({"bootstrap.servers": wire.bootstrap})
    plain.produce("orders", value=b"before")
    plain.flush(10)
    producer = transactional(wire, "orders-tx")
    producer.begin_transaction()
    producer.produce("orders", value=b"pending")
    producer.flush(10)
    plain.produce("orders", value=b"after")
    plain.flush(10)

    values, positions = read(wire, "orders", "read_committed")
    assert values == [b"before"]
    assert positions == {0: 1}            # the last stable offset: the open one's first
    values, _ = read(wire, "orders", "read_uncommitted")
    assert values == [b"before", b"pending", b"after"]
    producer.commit_transaction(10)
    values, _ = read(wire, "orders", "read_committed")
    assert values == [b"before", b"pending", b"after"]


def test_a_newer_producer_fences_the_older_one(wire: Wire) -> None:
    wire.log.create_topic("rides", 1)
    old = transactional(wire, "rides-tx")
    old.begin_transaction()
    old.produce("rides", value=b"zombie")
    old.flush(10)

    new = transactional(wire, "rides-tx")      # aborts what the old one left open
    new.begin_transaction()
    new.produce("rides", value=b"live")
    new.commit_transaction(10)

    with pytest.raises(KafkaException) as caught:
        old.produce("rides", value=b"zombie-2")
        old.commit_transaction(10)
    error = caught.value.args[0]
    assert error.fatal(), error
    assert error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                            KafkaError.INVALID_PRODUCER_EPOCH), error
    values, _ = read(wire, "rides", "read_committed")
    assert values == [b"live"]


def test_send_offsets_to_transaction_commits_the_group_offsets(wire: Wire) -> None:
    wire.log.create_topic("in", 1)
    wire.log.create_topic("out", 1)
    plain = Producer({"bootstrap.servers": wire.bootstrap})
    for i in range(5):
        plain.produce("in", value=b"%d" % i)
    plain.flush(10)
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({"bootstrap.servers": wire.bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 6000})
    consumer.subscribe(["in"])
    got = []
    deadline = time.monotonic() + 20
    while len(got) < 5:
        assert time.monotonic() < deadline, got
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            got.append(msg)
    producer = transactional(wire, "relay-tx")

    # an aborted transaction commits no offsets
    producer.begin_transaction()
    producer.produce("out", value=b"aborted")
    producer.send_offsets_to_transaction(
        [KafkaPartition("in", 0, 3)], consumer.consumer_group_metadata(), 10)
    producer.abort_transaction(10)
    assert wire.log.group_offsets(group) == []

    producer.begin_transaction()
    for msg in got:
        producer.produce("out", value=msg.value() + b"!")
    producer.send_offsets_to_transaction(
        [KafkaPartition("in", 0, got[-1].offset() + 1)],
        consumer.consumer_group_metadata(), 10)
    producer.commit_transaction(10)

    [committed] = consumer.committed([KafkaPartition("in", 0)], 10)
    assert committed.offset == 5
    assert [(o.topic, o.partition, o.committed) for o in wire.log.group_offsets(group)] \
        == [("in", 0, 5)]
    consumer.close()
    values, _ = read(wire, "out", "read_committed")
    assert values == [b"0!", b"1!", b"2!", b"3!", b"4!"]


def test_offsets_of_a_member_that_left_its_group_are_refused(wire: Wire) -> None:
    """KIP-447's zombie fencing: group metadata of a generation that is over (the
    consumer left, its partitions went elsewhere) cannot commit offsets."""
    wire.log.create_topic("in", 1)
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({"bootstrap.servers": wire.bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["in"])
    deadline = time.monotonic() + 20
    while not consumer.assignment():
        assert time.monotonic() < deadline, "never assigned"
        consumer.poll(0.2)
    stale = consumer.consumer_group_metadata()
    consumer.close()                                  # its generation is over

    producer = transactional(wire, "zombie-tx")
    producer.begin_transaction()
    producer.produce("in", value=b"output")
    with pytest.raises(KafkaException) as caught:
        producer.send_offsets_to_transaction([KafkaPartition("in", 0, 1)], stale, 10)
    error = caught.value.args[0]
    assert error.txn_requires_abort() and not error.fatal(), error
    assert error.code() == KafkaError.ILLEGAL_GENERATION, error
    producer.abort_transaction(10)
    assert wire.log.group_offsets(group) == []
    # the producer carries on with its next transaction
    producer.begin_transaction()
    producer.produce("in", value=b"next")
    producer.commit_transaction(10)
    values, _ = read(wire, "in", "read_committed")
    assert values == [b"next"]


def test_a_commit_after_the_member_lost_its_partitions_is_aborted(wire: Wire) -> None:
    """The offsets were sent while the member owned the partition; it left the group
    before the commit: the coordinator aborts the transaction (nothing of it visible,
    no offsets), the producer gets an abortable error and carries on."""
    wire.log.create_topic("in", 1)
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({"bootstrap.servers": wire.bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["in"])
    deadline = time.monotonic() + 20
    while not consumer.assignment():
        assert time.monotonic() < deadline, "never assigned"
        consumer.poll(0.2)
    producer = transactional(wire, "late-tx")
    producer.begin_transaction()
    producer.produce("in", value=b"output")
    producer.send_offsets_to_transaction([KafkaPartition("in", 0, 1)],
                                         consumer.consumer_group_metadata(), 10)
    consumer.close()                               # its partition is no longer its own

    with pytest.raises(KafkaException) as caught:
        producer.commit_transaction(10)
    error = caught.value.args[0]
    assert error.txn_requires_abort() and not error.fatal(), error
    assert error.code() == KafkaError.ILLEGAL_GENERATION, error
    producer.abort_transaction(10)
    assert wire.log.group_offsets(group) == []
    values, _ = read(wire, "in", "read_committed")
    assert values == []


def test_a_cooperative_member_commits_what_it_gives_up_in_its_revoke_callback(
        wire: Wire) -> None:
    """With cooperative-sticky, a member commits the offsets of the partitions it is
    giving up from its revoke callback, in the new generation whose assignment no
    longer has them: Kafka takes that commit (only the generation is checked), and
    so does this broker."""
    wire.log.create_topic("in", 2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    conf = {"bootstrap.servers": wire.bootstrap, "group.id": group,
            "partition.assignment.strategy": "cooperative-sticky",
            "heartbeat.interval.ms": 300}
    producer = transactional(wire, "coop-tx")
    first = Consumer(conf)
    committed: list[list[int]] = []

    def on_revoke(consumer: Consumer, parts: list[KafkaPartition]) -> None:
        if not parts:
            return
        producer.begin_transaction()
        producer.produce("in", value=b"output", partition=0)
        producer.send_offsets_to_transaction(
            [KafkaPartition(p.topic, p.partition, 1) for p in parts],
            consumer.consumer_group_metadata(), 10)
        producer.commit_transaction(10)
        committed.append([p.partition for p in parts])

    first.subscribe(["in"], on_revoke=on_revoke)
    deadline = time.monotonic() + 20
    while len(first.assignment()) < 2:
        assert time.monotonic() < deadline, "never assigned both partitions"
        first.poll(0.1)
    second = Consumer(conf)
    second.subscribe(["in"])
    while not committed:
        assert time.monotonic() < deadline, "no partition was revoked"
        first.poll(0.1)
        second.poll(0.1)
    [revoked] = committed
    assert len(revoked) == 1
    assert [(o.partition, o.committed) for o in wire.log.group_offsets(group)] == \
        [(revoked[0], 1)]
    first.close()
    second.close()


PRODUCER_THAT_DIES = """
import os, sys
from confluent_kafka import Producer
producer = Producer({"bootstrap.servers": sys.argv[1], "transactional.id": "dies",
                     "transaction.timeout.ms": 4000})
producer.init_transactions(10)
producer.begin_transaction()
producer.produce("jobs", value=b"never-committed")
producer.flush(10)
os.kill(os.getpid(), 9)                # no EndTxn: the transaction stays open
"""


def test_the_transaction_of_a_producer_that_died_is_aborted_at_its_timeout(
        wire: Wire) -> None:
    wire.log.create_topic("jobs", 1)
    died = subprocess.run([sys.executable, "-c", PRODUCER_THAT_DIES, wire.bootstrap],
                          capture_output=True, timeout=60)
    assert died.returncode == -9, died.stderr[-2000:]
    plain = Producer({"bootstrap.servers": wire.bootstrap})
    plain.produce("jobs", value=b"after")
    plain.flush(10)
    assert wire.log.offsets(TopicPartition("jobs", 0)) == (0, 2)

    # a read_committed reader is held at the open transaction (its end is the LSO, 0)
    values, _ = read(wire, "jobs", "read_committed")
    assert values == []
    # until the server aborts it (a 4 s timeout, looked at every second); then it
    # reads on, past the abort marker to the end
    deadline = time.monotonic() + 15
    while wire.log.offsets(TopicPartition("jobs", 0))[1] < 3:
        assert time.monotonic() < deadline, "the transaction was never aborted"
        time.sleep(0.1)
    values, positions = read(wire, "jobs", "read_committed")
    assert (values, positions) == ([b"after"], {0: 3})
