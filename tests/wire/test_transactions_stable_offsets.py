"""Stable offsets (Kafka's KIP-447) with confluent-kafka (librdkafka 2.x), on
``streamkit broker`` and on Apache Kafka 4.4: while a transaction holds offsets of a
group that it has not committed yet, a read_committed consumer of the group asking for
them (OffsetFetch with require_stable) gets neither the older offset nor the new one:
the broker answers UNSTABLE_OFFSET_COMMIT and the client asks again until the
transaction ends. So a consumer taking partitions over from a worker in the middle of
its commit starts where that commit leaves them, not before it (which would process
events twice under exactly-once)."""
from __future__ import annotations

import time
import uuid

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from confluent_kafka import Consumer, KafkaException, Producer  # noqa: E402
from confluent_kafka import TopicPartition as KafkaPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

pytestmark = [pytest.mark.kafka,
              pytest.mark.parametrize("kafka_broker", ["streamkit", "apache"],
                                      indirect=True)]


def _bootstrap(url: str) -> str:
    return url.removeprefix("kafka://")


def _topic(bootstrap: str) -> str:
    name = f"in-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=1)])[name].result(10)
    return name


def _consumer(bootstrap: str, group: str, isolation: str = "read_committed"
              ) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "isolation.level": isolation, "enable.auto.commit": False})


def _committed(consumer: Consumer, topic: str, timeout: float = 2.0) -> int | str:
    """The group's committed offset of ``topic[0]`` as ``committed()`` returns it, or
    the error it raised (the client's retries of an unstable offset time out)."""
    try:
        [tp] = consumer.committed([KafkaPartition(topic, 0)], timeout=timeout)
    except KafkaException as exc:
        return str(exc.args[0].name())
    return tp.error.name() if tp.error is not None else tp.offset


def _committed_soon(consumer: Consumer, topic: str, seconds: float) -> int | str:
    """The committed offset once ``committed()`` returns one (within ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        got = _committed(consumer, topic)
        if isinstance(got, int) or time.monotonic() > deadline:
            return got


def _setup(bootstrap: str) -> tuple[str, str, Consumer]:
    """A topic, a group that committed offset 1 of it, and a read_committed consumer
    of the group."""
    topic, group = _topic(bootstrap), f"g-{uuid.uuid4().hex[:8]}"
    plain = Producer({"bootstrap.servers": bootstrap})
    for i in range(10):
        plain.produce(topic, value=b"%d" % i)
    plain.flush(10)
    first = _consumer(bootstrap, group)
    first.commit(offsets=[KafkaPartition(topic, 0, 1)], asynchronous=False)
    first.close()
    return topic, group, _consumer(bootstrap, group)


def _transactional(bootstrap: str, **conf: object) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap,
                         "transactional.id": f"tx-{uuid.uuid4().hex[:8]}", **conf})
    producer.init_transactions(10)
    return producer


def test_offsets_held_by_an_open_transaction_are_not_read_until_it_ends(
        tansu: str) -> None:
    bootstrap = _bootstrap(tansu)
    topic, group, consumer = _setup(bootstrap)
    assert _committed(consumer, topic) == 1
    producer = _transactional(bootstrap)

    producer.begin_transaction()
    producer.send_offsets_to_transaction([KafkaPartition(topic, 0, 5)],
                                         consumer.consumer_group_metadata(), 10)
    # neither the older offset nor the one in flight
    assert _committed(consumer, topic) == "_TIMED_OUT"
    # a read_uncommitted consumer does not ask for stable offsets: it gets the older
    assert _committed(_consumer(bootstrap, group, "read_uncommitted"), topic) == 1
    producer.commit_transaction(10)
    assert _committed(consumer, topic) == 5

    producer.begin_transaction()
    producer.send_offsets_to_transaction([KafkaPartition(topic, 0, 9)],
                                         consumer.consumer_group_metadata(), 10)
    assert _committed(consumer, topic) == "_TIMED_OUT"
    producer.abort_transaction(10)
    assert _committed(consumer, topic) == 5
    consumer.close()


def test_a_transaction_past_its_timeout_holds_the_offsets_no_longer(tansu: str) -> None:
    """A producer that died in the middle of its transaction: once the broker aborts it
    (``transaction.timeout.ms``), the group's older offset is read again."""
    bootstrap = _bootstrap(tansu)
    topic, _group, consumer = _setup(bootstrap)
    producer = _transactional(bootstrap, **{"transaction.timeout.ms": 2000})
    producer.begin_transaction()
    producer.send_offsets_to_transaction([KafkaPartition(topic, 0, 7)],
                                         consumer.consumer_group_metadata(), 10)
    assert _committed(consumer, topic) == "_TIMED_OUT"
    # (Apache Kafka looks for timed-out transactions every 10 s)
    assert _committed_soon(consumer, topic, seconds=30) == 1
    consumer.close()
