"""What only a real Kafka can show about kafka://, on Apache Kafka 4.4 (tests/kafka_server,
decision 941): the records of an aborted transaction are never handed to a
read_committed reader, a compacted changelog keeps the latest value per key and loses
tombstoned keys once the cleaner ran, and retention deletes old segments while kafka://
reads on from the first record kept. tansu keeps aborted records visible and never
compacts nor deletes; streamkit broker serves no transactions.

The broker's background tasks are shortened by its settings (tests/kafka_server/broker.py)
and each topic's own config (``segment.ms``, ``min.cleanable.dirty.ratio``,
``delete.retention.ms``), so each test waits seconds, not minutes."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from streamkit.transport.kafka import KafkaBroker
from streamkit.types import Message, OutgoingRecord, TopicPartition
from tests.kafka_server import broker as apache_kafka

pytestmark = [pytest.mark.kafka,
              pytest.mark.parametrize("kafka_broker", ["apache"], indirect=True)]

#: a compacted topic whose segments roll after 100 ms and are cleaned at once
COMPACTED = {"cleanup.policy": "compact", "segment.ms": "100",
             "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0",
             "min.compaction.lag.ms": "0"}


@pytest.fixture
def broker(tansu: str) -> Iterator[KafkaBroker]:
    """kafka:// on the session's Apache Kafka, closed after the test."""
    b = KafkaBroker(tansu)
    yield b
    b.close()


def read_all(broker: KafkaBroker, tp: TopicPartition) -> list[Message]:
    """Every record the partition holds now, from its first offset."""
    start, end = broker.offsets(tp)
    got: list[Message] = []
    while start < end:
        batch = broker.fetch(tp, start, 1000, timeout=2)
        if not batch:
            break
        got += batch
        start = batch[-1].offset + 1
    return got


def transactional_producer(url: str) -> Producer:
    """confluent-kafka's transactional producer, its transactions initialised."""
    producer = Producer({"bootstrap.servers": url.removeprefix("kafka://"),
                         "transactional.id": f"tx-{uuid.uuid4().hex[:8]}"})
    producer.init_transactions(10)
    return producer


def test_offsets_of_a_topic_just_created_wait_for_its_leaders(broker):
    # Kafka makes a new topic's partition leaders a moment after the topic shows in
    # its metadata; list-offsets answers NOT_LEADER_OR_FOLLOWER until then.
    for _ in range(10):
        name = f"new-{uuid.uuid4().hex[:8]}"
        broker.create_topic(name, partitions=4)
        assert [broker.offsets(TopicPartition(name, p)) for p in range(4)] == [(0, 0)] * 4


#: a group's offsets asked first thing on a new broker (its coordinator still loading
#: them), then once the group committed one
GROUP_OFFSETS_AT_START = textwrap.dedent("""
    import sys
    from streamkit.transport.kafka import KafkaBroker
    from streamkit.types import TopicPartition
    broker = KafkaBroker(sys.argv[1])
    print(broker.group_offsets("g"), flush=True)
    broker.create_topic("t", partitions=1)
    broker.commit_offsets("g", {TopicPartition("t", 0): 0})
    print(broker.group_offsets("g"), flush=True)
    broker.close()
""")


def test_group_offsets_asked_as_the_broker_starts(kafka_broker, tmp_path: Path):
    """Asked while the group coordinator still loads its offsets (a new broker, its
    offsets topic just created), they come (none yet), then the committed one: the
    admin client's ListConsumerGroupOffsets crashed the process with a segmentation
    fault there, in two runs of three (librdkafka issue 5040)."""
    reason = apache_kafka.missing()
    if reason is not None:
        pytest.skip(reason)
    kafka = apache_kafka.ApacheKafka(tmp_path)      # its own: a new broker
    try:
        done = subprocess.run([sys.executable, "-c", GROUP_OFFSETS_AT_START, kafka.url],
                              capture_output=True, text=True, timeout=120,
                              cwd=Path(__file__).resolve().parents[2])
    finally:
        kafka.stop()
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.splitlines() == [
        "[]", "[GroupOffset(topic='t', partition=0, committed=0, end_offset=0)]"]


def test_acks_0_records_sent_to_a_topic_just_created_all_arrive(broker):
    # A leader not in place yet drops acks=0 records: create_topic waits for them.
    for _ in range(5):
        name = f"new-{uuid.uuid4().hex[:8]}"
        broker.produce(name, [OutgoingRecord(b"k%d" % i, b"v") for i in range(20)],
                       acks=0)
        deadline = time.monotonic() + 5
        while sum(broker.describe_topic(name).end_offsets) < 20 and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        assert sum(broker.describe_topic(name).end_offsets) == 20


def test_read_committed_readers_never_see_an_aborted_transaction(broker, topic_name):
    broker.create_topic(topic_name, partitions=1)
    producer = transactional_producer(broker.url)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic_name, key=b"k", value=b"aborted%d" % i, partition=0)
    producer.flush(10)
    producer.abort_transaction(10)
    producer.begin_transaction()
    for i in range(2):
        producer.produce(topic_name, key=b"k", value=b"committed%d" % i, partition=0)
    producer.commit_transaction(10)

    tp = TopicPartition(topic_name, 0)
    # offsets 0-2 aborted, 3 the abort marker, 4-5 committed, 6 the commit marker
    assert broker.offsets(tp) == (0, 7)
    fetched = broker.fetch(tp, 0, 100, timeout=5)
    assert [(m.offset, m.value) for m in fetched] == [(4, b"committed0"),
                                                      (5, b"committed1")]

    def group_reads(isolation_level: str) -> list[bytes]:
        consumer = broker.group_consumer(f"g-{uuid.uuid4().hex[:8]}", [topic_name],
                                         session_timeout=3,
                                         isolation_level=isolation_level)
        got: list[Message] = []
        deadline = time.monotonic() + 20
        while (not got or got[-1].offset < 5) and time.monotonic() < deadline:
            got += consumer.poll(100, 0.1)
        consumer.close(commit=False)
        return [m.value for m in got]

    assert group_reads("read_committed") == [b"committed0", b"committed1"]
    # The aborted records are in the log: a read_uncommitted member is handed them.
    assert group_reads("read_uncommitted") == [b"aborted0", b"aborted1", b"aborted2",
                                               b"committed0", b"committed1"]


def test_a_fetch_at_a_transaction_marker_returns_at_once(broker, topic_name):
    # A partition written in transactions ends with a commit marker, never handed to
    # a reader: fetching there is fetching at the end (a table restored from an
    # exactly_once changelog does it for every partition).
    broker.create_topic(topic_name, partitions=1)
    tx = broker.transactional_producer(f"tx-{uuid.uuid4().hex[:8]}")
    tx.begin()
    tx.send(topic_name, [OutgoingRecord(b"k", b"v%d" % i) for i in range(3)])
    tx.commit()
    tx.close()
    tp = TopicPartition(topic_name, 0)
    assert broker.offsets(tp) == (0, 4)
    assert [m.offset for m in broker.fetch(tp, 0, 100, timeout=5)] == [0, 1, 2]
    began = time.monotonic()
    assert broker.fetch(tp, 3, 100, timeout=0.5) == []
    assert time.monotonic() - began < 2      # not the catch-up wait of 10 s


def test_compaction_keeps_the_latest_value_per_key_and_drops_tombstones(broker,
                                                                       topic_name):
    broker.create_topic(topic_name, partitions=1, config=COMPACTED)
    keys = [b"k%d" % i for i in range(5)]
    broker.produce(topic_name, [OutgoingRecord(k, b"v1", partition=0) for k in keys])
    broker.produce(topic_name, [OutgoingRecord(k, b"v2", partition=0) for k in keys])
    broker.produce(topic_name, [OutgoingRecord(k, None, partition=0)
                                for k in (b"k1", b"k3")])
    tp = TopicPartition(topic_name, 0)
    written = read_all(broker, tp)
    assert len(written) == 12

    # The cleaner never touches the active segment: a filler record every few tenths
    # of a second rolls it (segment.ms) and gives the cleaner a dirty tail to pass over;
    # tombstones go in a second pass, once their delete horizon (0 ms) is behind.
    deadline = time.monotonic() + 45
    while True:
        broker.produce(topic_name, [OutgoingRecord(b"filler", b"x", partition=0)])
        kept = [m for m in read_all(broker, tp) if m.key != b"filler"]
        if len(kept) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert [(m.key, m.value) for m in kept] == [(b"k0", b"v2"), (b"k2", b"v2"),
                                               (b"k4", b"v2")]
    # Compaction keeps offsets: the survivors are where they were written.
    assert [m.offset for m in kept] == [5, 7, 9]


def test_retention_deletes_old_segments_and_reads_go_on_from_the_first_kept(broker,
                                                                           topic_name):
    broker.create_topic(topic_name, partitions=1,
                        config={"retention.ms": "60000", "segment.ms": "100"})
    ten_minutes_ago = int(time.time() * 1000) - 600_000
    broker.produce(topic_name, [OutgoingRecord(None, b"old%d" % i, partition=0,
                                               timestamp=ten_minutes_ago)
                                for i in range(5)])
    time.sleep(0.2)           # past segment.ms: the next record starts a new segment
    broker.produce(topic_name, [OutgoingRecord(None, b"new%d" % i, partition=0)
                                for i in range(3)])
    tp = TopicPartition(topic_name, 0)
    deadline = time.monotonic() + 20
    while broker.offsets(tp)[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert broker.offsets(tp) == (5, 8)
    # Kafka answers a fetch below the log start with OFFSET_OUT_OF_RANGE; kafka://
    # reads on from the first record kept, as log:// does.
    fetched = broker.fetch(tp, 0, 100, timeout=5)
    assert [(m.offset, m.value) for m in fetched] == [(5, b"new0"), (6, b"new1"),
                                                      (7, b"new2")]
