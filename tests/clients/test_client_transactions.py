"""Transactions from streamkit.Producer and read_committed streamkit.Consumer, as a
kafka-python / confluent-kafka user writes them, on a real log on disk and in memory
(issue 19)."""
from __future__ import annotations

import pytest

import streamkit
from streamkit.errors import (InvalidConfig, InvalidTxnState, ProducerFenced,
                              TransactionAborted)
from streamkit.types import TopicPartition

RC = "read_committed"


def read_all(url: str, topic: str, isolation: str = RC, group: str | None = None
             ) -> list[bytes]:
    """Every value of ``topic`` (one partition) a consumer sees (in ``group``, or
    ungrouped)."""
    with streamkit.Consumer(topic, broker=url, auto_offset_reset="earliest",
                            group_id=group, isolation_level=isolation,
                            consumer_timeout_ms=300) as c:
        return [m.value for m in c]


def tx_producer(url: str, tid: str = "tx-1", **kw) -> streamkit.Producer:
    producer = streamkit.Producer(broker=url, transactional_id=tid, **kw)
    producer.init_transactions()
    return producer


def test_consume_transform_produce_with_read_committed(url):
    """kafka-python's loop: read input, write output and the input offsets in one
    transaction; a read_committed consumer downstream sees exactly the outputs."""
    with streamkit.Producer(broker=url) as plain:
        for i in range(10):
            plain.send("in", value=b"%d" % i)
    producer = tx_producer(url, "ctp")
    consumer = streamkit.Consumer("in", broker=url, group_id="g",
                                  auto_offset_reset="earliest", enable_auto_commit=False,
                                  isolation_level=RC)
    done = 0
    while done < 10:
        batch = consumer.poll(timeout_ms=1000, max_records=4)
        if not batch:
            continue
        producer.begin_transaction()
        for messages in batch.values():
            for m in messages:
                producer.send("out", value=m.value * 2)
            done += len(messages)
        offsets = {tp: consumer.position(tp) for tp in consumer.assignment()}
        producer.send_offsets_to_transaction(offsets, "g")
        producer.commit_transaction()
    consumer.close()
    producer.close()
    assert read_all(url, "out") == [b"%d" % i * 2 for i in range(10)]
    with streamkit.Consumer("in", broker=url, group_id="g") as again:
        assert again.committed(TopicPartition("in", 0)) == 10


def test_aborted_transactions_are_invisible_to_read_committed(url):
    producer = tx_producer(url, linger_ms=50)      # (lingering records too)
    producer.begin_transaction()
    producer.send("t", value=b"kept-1")
    producer.commit_transaction()
    producer.begin_transaction()
    producer.send("t", value=b"dropped")
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send("t", value=b"kept-2")
    producer.commit_transaction()
    producer.close()
    assert read_all(url, "t") == [b"kept-1", b"kept-2"]
    assert read_all(url, "t", group="reader") == [b"kept-1", b"kept-2"]
    assert read_all(url, "t", "read_uncommitted") == [b"kept-1", b"dropped", b"kept-2"]
    # (kafka-python's default is read_uncommitted)
    assert read_all(url, "t", "read_uncommitted", group="other") == \
        [b"kept-1", b"dropped", b"kept-2"]


def test_an_open_transaction_is_not_read_until_committed(url):
    producer = tx_producer(url)
    producer.begin_transaction()
    future = producer.send("t", value=b"pending")
    producer.flush()
    assert future.get().offset == 0
    assert read_all(url, "t") == []
    producer.commit_transaction()
    assert read_all(url, "t") == [b"pending"]
    producer.close()


def test_manual_assignment_reads_committed_only(url):
    producer = tx_producer(url)
    producer.begin_transaction()
    producer.send("t", value=b"no")
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send("t", value=b"yes")
    producer.commit_transaction()
    producer.close()
    with streamkit.Consumer(broker=url, auto_offset_reset="earliest",
                            isolation_level=RC, consumer_timeout_ms=200) as consumer:
        consumer.assign([TopicPartition("t", 0)])
        assert [m.value for m in consumer] == [b"yes"]


def test_a_newer_producer_with_the_same_id_fences_the_older(url):
    old = tx_producer(url, "same")
    old.begin_transaction()
    old.send("t", value=b"zombie-1")
    old.flush()
    new = tx_producer(url, "same")            # aborts what old left open
    new.begin_transaction()
    new.send("t", value=b"fresh")
    new.commit_transaction()
    with pytest.raises(ProducerFenced):
        old.send("t", value=b"zombie-2")
        old.commit_transaction()
    old.close()
    new.close()
    assert read_all(url, "t") == [b"fresh"]


def test_offsets_are_committed_only_with_the_commit(url):
    tp = TopicPartition("in", 0)
    with streamkit.Producer(broker=url) as plain:
        for i in range(3):
            plain.send("in", value=b"%d" % i)
    producer = tx_producer(url)
    producer.begin_transaction()
    producer.send("out", value=b"x")
    producer.send_offsets_to_transaction({tp: 2}, "g")
    producer.abort_transaction()
    with streamkit.Consumer(broker=url, group_id="g") as consumer:
        assert consumer.committed(tp) is None
    producer.begin_transaction()
    producer.send_offsets_to_transaction({tp: 3}, "g")
    with streamkit.Consumer(broker=url, group_id="g") as consumer:
        assert consumer.committed(tp) is None      # not before the commit
    producer.commit_transaction()
    with streamkit.Consumer(broker=url, group_id="g") as consumer:
        assert consumer.committed(tp) == 3
    producer.close()


def test_group_metadata_fences_a_member_that_lost_its_partitions(url):
    """confluent-kafka style: offsets sent with the consumer's group metadata are
    refused once that member left the group (its partitions went elsewhere)."""
    with streamkit.Producer(broker=url) as plain:
        plain.send("in", value=b"a")
    consumer = streamkit.Consumer("in", broker=url, group_id="g",
                                  auto_offset_reset="earliest", enable_auto_commit=False,
                                  isolation_level=RC)
    assert consumer.poll(timeout_ms=2000)
    metadata = consumer.consumer_group_metadata()
    assert metadata.group_id == "g" and metadata.member_id
    tp = TopicPartition("in", 0)
    producer = tx_producer(url)
    producer.begin_transaction()
    producer.send("out", value=b"A")
    producer.send_offsets_to_transaction({tp: 1}, metadata)
    consumer.close(autocommit=False)                 # the member is gone
    with pytest.raises(TransactionAborted):
        producer.commit_transaction()
    producer.abort_transaction()                      # kafka-python's except: branch
    producer.close()
    assert read_all(url, "out") == []
    with streamkit.Consumer(broker=url, group_id="g") as again:
        assert again.committed(tp) is None


def test_calls_out_of_order_are_refused(url):
    producer = streamkit.Producer(broker=url, transactional_id="order")
    with pytest.raises(InvalidTxnState, match="init_transactions"):
        producer.begin_transaction()
    producer.init_transactions()
    with pytest.raises(InvalidTxnState, match="already called"):
        producer.init_transactions()
    with pytest.raises(InvalidTxnState, match="no transaction open"):
        producer.send("t", value=b"outside")
    with pytest.raises(InvalidTxnState, match="no transaction open"):
        producer.commit_transaction()
    with pytest.raises(InvalidTxnState, match="no transaction open"):
        producer.abort_transaction()
    with pytest.raises(InvalidTxnState, match="no transaction open"):
        producer.send_offsets_to_transaction({TopicPartition("t", 0): 1}, "g")
    producer.begin_transaction()
    with pytest.raises(InvalidTxnState, match="already has one open"):
        producer.begin_transaction()
    with pytest.raises(TypeError, match="group"):
        producer.send_offsets_to_transaction({TopicPartition("t", 0): 1}, 42)
    producer.close()                                  # aborts the open transaction
    plain = streamkit.Producer(broker=url)
    with pytest.raises(InvalidTxnState, match="without a transactional_id"):
        plain.begin_transaction()
    plain.close()


def test_close_aborts_the_open_transaction(url):
    producer = tx_producer(url)
    producer.begin_transaction()
    producer.send("t", value=b"never")
    producer.close()
    assert read_all(url, "t") == []
    after = tx_producer(url)          # the id is free, nothing left open
    after.begin_transaction()
    after.send("t", value=b"later")
    after.commit_transaction()
    after.close()
    assert read_all(url, "t") == [b"later"]


def test_bad_settings_are_one_line_errors(url):
    with pytest.raises(InvalidConfig, match="isolation_level='committed'"):
        streamkit.Consumer(broker=url, isolation_level="committed")
    with pytest.raises(InvalidConfig, match="transactional_id=''"):
        streamkit.Producer(broker=url, transactional_id="")
    with pytest.raises(InvalidConfig, match="transaction_timeout_ms=0"):
        streamkit.Producer(broker=url, transactional_id="x", transaction_timeout_ms=0)
    with streamkit.Consumer(broker=url) as consumer:
        with pytest.raises(InvalidConfig, match="group_id"):
            consumer.consumer_group_metadata()


def test_a_failed_send_rolls_the_whole_transaction_back(url):
    """A record that could not be written fails the commit: the others of the
    transaction and its offsets are rolled back with it, and the loop goes on."""
    tp = TopicPartition("in", 0)
    with streamkit.Producer(broker=url) as plain:
        plain.send("t", value=b"setup").get()          # "t" has one partition
    producer = tx_producer(url)
    producer.begin_transaction()
    good = producer.send("t", value=b"good")
    bad = producer.send("t", value=b"bad", partition=7)
    producer.send_offsets_to_transaction({tp: 1}, "g")
    with pytest.raises(TransactionAborted, match="failed"):
        producer.commit_transaction()
    assert good.succeeded() and bad.failed()
    producer.abort_transaction()                      # nothing left to do: no error
    producer.begin_transaction()
    producer.send("t", value=b"retry")
    producer.commit_transaction()
    producer.close()
    assert read_all(url, "t") == [b"setup", b"retry"]
    with streamkit.Consumer(broker=url, group_id="g") as consumer:
        assert consumer.committed(tp) is None


class ConfluentTP:
    """confluent_kafka.TopicPartition's shape: what confluent-kafka code passes."""

    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset


def test_confluent_style_offsets_and_group_metadata(url):
    with streamkit.Producer(broker=url) as plain:
        plain.send("in", value=b"a").get()
    consumer = streamkit.Consumer("in", broker=url, group_id="g",
                                  auto_offset_reset="earliest", enable_auto_commit=False,
                                  isolation_level=RC)
    assert consumer.poll(timeout_ms=2000)
    producer = tx_producer(url)
    producer.begin_transaction()
    producer.send("out", value=b"A")
    producer.send_offsets_to_transaction([ConfluentTP("in", 0, 1)],
                                         consumer.consumer_group_metadata(), 10)
    producer.commit_transaction(10)
    producer.close()
    assert consumer.committed(TopicPartition("in", 0)) == 1
    consumer.close(autocommit=False)
    assert read_all(url, "out") == [b"A"]
