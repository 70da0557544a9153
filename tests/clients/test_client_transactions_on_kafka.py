"""Transactions from streamkit.Producer and read_committed streamkit.Consumer on
kafka:// (tansu, streamkit broker), through librdkafka's transactions (issue 19): the
same loop as on log://, with only the broker URL changed. tansu still delivers aborted
records to read_committed consumers, so their invisibility is checked on streamkit
broker only (as tests/transport/test_kafka_transactions.py does)."""
from __future__ import annotations

import time
import uuid

import pytest

import streamkit
from streamkit.errors import InvalidTxnState, ProducerFenced
from streamkit.types import TopicPartition

pytestmark = pytest.mark.kafka

RC = "read_committed"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def read_until(url: str, topic: str, isolation: str, last: bytes) -> list[bytes]:
    """The values of ``topic`` (one partition) a consumer without a group sees at
    ``isolation``, up to the value ``last`` (or 3 s without a new one)."""
    got: list[bytes] = []
    with streamkit.Consumer(topic, broker=url, auto_offset_reset="earliest",
                            isolation_level=isolation, consumer_timeout_ms=3000) as c:
        for m in c:
            got.append(m.value)
            if m.value == last:
                break
    return got


def tx_producer(url: str, tid: str, **kw) -> streamkit.Producer:
    producer = streamkit.Producer(broker=url, transactional_id=tid, **kw)
    producer.init_transactions()
    return producer


def test_consume_transform_produce_commits_outputs_and_offsets_together(tansu):
    source, sink, group = unique("in"), unique("out"), unique("g")
    with streamkit.Producer(tansu) as plain:
        for i in range(10):
            plain.send(source, value=b"%d" % i)
    producer = tx_producer(tansu, unique("ctp"), linger_ms=10_000)
    consumer = streamkit.Consumer(source, broker=tansu, group_id=group,
                                  auto_offset_reset="earliest", enable_auto_commit=False,
                                  isolation_level=RC, session_timeout_ms=3000)
    done, polls = 0, 0
    while done < 10 and polls < 40:
        polls += 1
        batch = consumer.poll(timeout_ms=500, max_records=4)
        if not batch:
            continue
        producer.begin_transaction()
        futures = [producer.send(sink, value=m.value * 2)
                   for messages in batch.values() for m in messages]
        done += len(futures)
        offsets = {tp: consumer.position(tp) for tp in consumer.assignment()}
        # (the member's librdkafka metadata: Kafka's coordinator checks its generation)
        producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata())
        # the linger (10 s) has not passed: the commit writes the batch into it first
        producer.commit_transaction()
        assert all(f.is_done and f.succeeded() for f in futures)
    consumer.close(autocommit=False)
    assert done == 10
    assert read_until(tansu, sink, RC, b"99") == [b"%d" % i * 2 for i in range(10)]

    # a group id alone commits too (kafka-python's call), for the next input
    with streamkit.Producer(tansu) as plain:
        plain.send(source, value=b"10").get(timeout=10)
    producer.begin_transaction()
    producer.send(sink, value=b"1010")
    producer.send_offsets_to_transaction({TopicPartition(source, 0): 11}, group)
    producer.commit_transaction()
    producer.close()
    with streamkit.Consumer(source, broker=tansu, group_id=group,
                            enable_auto_commit=False) as again:
        assert again.committed(TopicPartition(source, 0)) == 11


def test_an_abort_hides_the_outputs_from_read_committed(tansu, kafka_broker):
    topic = unique("abort")
    producer = tx_producer(tansu, unique("ab"))
    producer.begin_transaction()
    producer.send(topic, value=b"dropped")
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send(topic, value=b"kept")
    producer.commit_transaction()
    producer.close()
    # read_uncommitted (kafka-python's default) sees the aborted record as well
    assert read_until(tansu, topic, "read_uncommitted", b"kept") == [b"dropped", b"kept"]
    if kafka_broker == "tansu":
        pytest.skip("tansu delivers aborted records to read_committed consumers")
    # read to the end (3 s without a record): the commit marker after "kept" is never
    # handed over, and the read must not wait for it (the broker's 10 s timeout)
    started = time.monotonic()
    assert read_until(tansu, topic, RC, b"(none)") == [b"kept"]
    assert time.monotonic() - started < 8


def test_a_newer_producer_with_the_same_id_fences_the_older(tansu):
    topic, tid = unique("fence"), unique("zombie")
    old = tx_producer(tansu, tid)
    new = tx_producer(tansu, tid)
    old.begin_transaction()
    future = old.send(topic, value=b"from the zombie")
    with pytest.raises(ProducerFenced, match=tid):
        old.commit_transaction()
    assert future.failed()
    with pytest.raises(ProducerFenced):      # it stays fenced
        old.begin_transaction()
    old.close()
    new.begin_transaction()
    new.send(topic, value=b"from the new one")
    new.commit_transaction()
    new.close()
    assert read_until(tansu, topic, RC, b"from the new one") == [b"from the new one"]


def test_calls_out_of_order_are_refused(tansu):
    producer = streamkit.Producer(tansu, transactional_id=unique("order"))
    with pytest.raises(InvalidTxnState, match="init_transactions"):
        producer.begin_transaction()
    producer.init_transactions()
    with pytest.raises(InvalidTxnState, match="begin_transaction"):
        producer.send(unique("t"), value=b"v")
    with pytest.raises(InvalidTxnState, match="no transaction open"):
        producer.commit_transaction()
    producer.begin_transaction()
    with pytest.raises(InvalidTxnState, match="already has one open"):
        producer.begin_transaction()
    producer.close()        # (aborts the open transaction)
