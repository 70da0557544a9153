"""Consumer groups of real Kafka clients against ``streamkit broker``'s server:
kafka-python commits and a new consumer of the group resumes there; two confluent-kafka
members share a topic and hand over without loss or duplicates when one leaves; the
admin clients list and describe the groups."""
from __future__ import annotations

import time
from typing import Any

import pytest

kafka = pytest.importorskip("kafka", reason="kafka-python is not installed")
confluent_kafka = pytest.importorskip("confluent_kafka")

from confluent_kafka import Consumer  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer  # noqa: E402

import streamkit  # noqa: E402
from tests.wire.conftest import Wire  # noqa: E402


def write(wire: Wire, topic: str, count: int, start: int = 0, partitions: int = 4) -> None:
    """``count`` records through a log:// producer, spread over the partitions."""
    if wire.log.partition_count(topic) is None:
        wire.log.create_topic(topic, partitions)
    producer = streamkit.Producer(broker="log://", datadir=wire.datadir)
    for i in range(start, start + count):
        producer.send(topic, value=b"v%d" % i, key=b"k%d" % i)
    producer.close()


def kafka_python_consumer(wire: Wire, **options: Any) -> KafkaConsumer:
    settings: dict[str, Any] = dict(bootstrap_servers=[wire.bootstrap], group_id="g",
                                    enable_auto_commit=False,
                                    auto_offset_reset="earliest",
                                    heartbeat_interval_ms=300, session_timeout_ms=3000)
    settings.update(options)
    return KafkaConsumer("orders", **settings)


def drain(consumer: KafkaConsumer, count: int, seconds: float = 15) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + seconds
    while len(got) < count and time.monotonic() < deadline:
        # (a long poll: kafka-python 3.0.12 can stall for good when a poll times out
        # while its SyncGroup is answered, under load)
        wait = min(2000, max(1, int((deadline - time.monotonic()) * 1000)))
        for records in consumer.poll(timeout_ms=wait, max_records=count - len(got)).values():
            got += records
    return got


def test_a_new_consumer_of_the_group_resumes_at_the_committed_offset(wire: Wire) -> None:
    write(wire, "orders", 40)
    first = kafka_python_consumer(wire)
    try:
        read = drain(first, 25)
        first.commit()
        committed = {tp.partition: first.committed(tp) for tp in first.assignment()}
    finally:
        first.close()
    second = kafka_python_consumer(wire)
    try:
        rest = drain(second, 15)
        assert drain(second, 1, seconds=0.5) == []
    finally:
        second.close()

    assert len(read) == 25
    assert sorted(m.value for m in read + rest) == sorted(b"v%d" % i for i in range(40))
    # what the log keeps (and `streamkit groups` shows) is what kafka-python committed
    assert {o.partition: o.committed for o in wire.log.group_offsets("g")} == committed
    assert sum(committed.values()) == 25


def confluent_member(wire: Wire) -> Consumer:
    consumer = Consumer({"bootstrap.servers": wire.bootstrap, "group.id": "shared",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "session.timeout.ms": 6000, "heartbeat.interval.ms": 300,
                         "topic.metadata.refresh.interval.ms": 1000})
    consumer.subscribe(["orders"])
    return consumer


def poll_both(members: list[Consumer], got: list[list[bytes]], until: Any,
              seconds: float = 20) -> None:
    """Poll each member in turn, committing each record it gets, until ``until()``."""
    deadline = time.monotonic() + seconds
    while not until() and time.monotonic() < deadline:
        for i, member in enumerate(members):
            message = member.poll(0.05)
            if message is not None and message.error() is None:
                got[i].append(message.value())
                member.commit(message, asynchronous=False)


def test_two_confluent_members_share_a_topic_and_hand_over_when_one_leaves(
        wire: Wire) -> None:
    write(wire, "orders", 40)
    one, two = confluent_member(wire), confluent_member(wire)
    got: list[list[bytes]] = [[], []]
    try:
        poll_both([one, two], got, lambda: len(one.assignment()) == 2 ==
                  len(two.assignment()) and sum(map(len, got)) == 40)
        shares = ({tp.partition for tp in one.assignment()},
                  {tp.partition for tp in two.assignment()})
        read_by_one = len(got[0])
        one.close()
        write(wire, "orders", 40, start=40)
        poll_both([two], got[1:], lambda: len(two.assignment()) == 4 and
                  sum(map(len, got)) >= 80)
    finally:
        two.close()

    assert shares[0] | shares[1] == {0, 1, 2, 3} and not shares[0] & shares[1]
    assert read_by_one > 0 and len(got[1]) > 40
    everything = got[0] + got[1]
    assert sorted(everything) == sorted(b"v%d" % i for i in range(80))   # no loss, no twice


def test_admin_clients_list_and_describe_groups(wire: Wire) -> None:
    write(wire, "orders", 4)
    member = kafka_python_consumer(wire, group_id="listed")
    try:
        drain(member, 4)
        member.commit()
        admin = KafkaAdminClient(bootstrap_servers=wire.bootstrap)
        try:
            listed = admin.list_groups()
            described = admin.describe_groups(["listed", "never"])
            offsets = admin.list_group_offsets("listed")["listed"]
            unknown = admin.list_group_offsets("never")["never"]
        finally:
            admin.close()
        confluent = AdminClient({"bootstrap.servers": wire.bootstrap})
        valid = confluent.list_consumer_groups().result(timeout=10).valid
        by_confluent = confluent.describe_consumer_groups(["listed"])["listed"] \
            .result(timeout=10)
    finally:
        member.close()

    assert [(g["group_id"], g["protocol_type"], g["group_state"]) for g in listed] == \
        [("listed", "consumer", "Stable")]
    assert (described["listed"]["group_state"], described["listed"]["protocol_data"]) == \
        ("Stable", "range")
    (only,) = described["listed"]["members"]
    assert only["client_id"] == member.config["client_id"]
    assert only["member_metadata"]["topics"] == ["orders"]
    assert only["member_assignment"]["assigned_partitions"] == \
        [{"topic": "orders", "partitions": [0, 1, 2, 3]}]
    assert described["never"]["group_state"] == "Dead"
    assert sum(o.offset for o in offsets.values()) == 4 and unknown == {}
    assert [g.group_id for g in valid] == ["listed"]
    assert str(by_confluent.state).endswith("STABLE")
    assert {tp.partition for m in by_confluent.members
            for tp in m.assignment.topic_partitions} == {0, 1, 2, 3}


@pytest.mark.anyio
async def test_aiokafka_commits_where_a_log_consumer_of_the_group_resumes(wire: Wire
                                                                         ) -> None:
    aiokafka = pytest.importorskip("aiokafka")
    write(wire, "orders", 20)
    consumer = aiokafka.AIOKafkaConsumer("orders", bootstrap_servers=wire.bootstrap,
                                         group_id="aio", enable_auto_commit=False,
                                         auto_offset_reset="earliest")
    await consumer.start()
    try:
        got: list[Any] = []
        deadline = time.monotonic() + 15
        while len(got) < 20 and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got += records
        await consumer.commit()
    finally:
        await consumer.stop()
    write(wire, "orders", 5, start=20)

    # a log:// consumer of the same group reads on from what aiokafka committed
    log_consumer = streamkit.Consumer("orders", broker="log://", datadir=wire.datadir,
                                      group_id="aio", auto_offset_reset="earliest")
    try:
        rest: list[Any] = []
        deadline = time.monotonic() + 10
        while len(rest) < 5 and time.monotonic() < deadline:
            for messages in log_consumer.poll(timeout_ms=200).values():
                rest += messages
    finally:
        log_consumer.close()
    assert len(got) == 20
    assert sorted(m.value for m in rest) == sorted(b"v%d" % i for i in range(20, 25))
