"""streamkit.Producer, Consumer and Admin, as a kafka-python user writes them."""
from __future__ import annotations

import json
import time

import pytest

import streamkit
from streamkit.errors import DecodeError, InvalidConfig, TopicExists, UnknownTopic
from streamkit.partitioner import partition_for_key
from streamkit.types import GroupOffset, TopicPartition


def dumps(value) -> bytes:
    return json.dumps(value).encode()


def test_exported_from_the_package():
    assert {"Producer", "Consumer", "Admin"} <= set(streamkit.__all__)


def test_producer_send_get_metadata(url):
    with streamkit.Producer(broker=url, value_serializer=dumps, acks=1,
                            default_partitions=4) as producer:
        meta = producer.send("demo_1", value={"a": 1}, key=b"k", headers=[("h", b"v")],
                             timestamp_ms=None, partition=None).get(timeout=10)
        assert meta.topic == "demo_1"
        assert meta.partition == partition_for_key(b"k", 4)
        assert meta.offset == 0
        assert abs(meta.timestamp - time.time() * 1000) < 5000
        second = producer.send("demo_1", value={"a": 2}, key=b"k",
                               timestamp_ms=42).get()
        assert (second.offset, second.timestamp) == (1, 42)
        explicit = producer.send("demo_1", value=[1], partition=3).get()
        assert explicit.partition == 3
        assert producer.partitions_for("demo_1") == {0, 1, 2, 3}
    with streamkit.Consumer("demo_1", broker=url, auto_offset_reset="earliest",
                            value_deserializer=json.loads,
                            consumer_timeout_ms=200) as consumer:
        messages = sorted(consumer, key=lambda m: (m.partition, m.offset))
    first = next(m for m in messages if m.offset == 0 and m.key == b"k")
    assert first.value == {"a": 1} and first.headers == [("h", b"v")]
    assert first.topic == "demo_1" and first.partition == meta.partition
    assert any(m.timestamp == 42 for m in messages)


def test_key_serializer_and_str_keys(url):
    with streamkit.Producer(broker=url, key_serializer=lambda k: k.upper().encode(),
                            default_partitions=4) as producer:
        meta = producer.send("t", value=b"v", key="abc").get()
    assert meta.partition == partition_for_key(b"ABC", 4)
    with streamkit.Producer(broker=url) as producer:
        assert producer.send("t", value="text", key="abc").get().partition == \
            partition_for_key(b"abc", 4)
        with pytest.raises(TypeError, match="value_serializer"):
            producer.send("t", value={"not": "bytes"})


def test_none_value_is_a_tombstone_even_with_a_serializer(url):
    with streamkit.Producer(broker=url, value_serializer=dumps) as producer:
        producer.send("t", key=b"k", value=None).get()
    with streamkit.Consumer("t", broker=url, auto_offset_reset="earliest",
                            consumer_timeout_ms=100) as consumer:
        assert [m.value for m in consumer] == [None]


def test_linger_buffers_until_batch_size_or_flush(url):
    admin = streamkit.Admin(broker=url)
    admin.create_topic("t", partitions=1)
    producer = streamkit.Producer(broker=url, linger_ms=60_000, batch_size=3)
    first = producer.send("t", value=b"1")
    second = producer.send("t", value=b"2")
    assert not first.is_done and not second.is_done
    assert admin.describe_topic("t").end_offsets == [0]
    third = producer.send("t", value=b"3")              # batch_size reached
    assert first.is_done and third.is_done and third.get().offset == 2
    fourth = producer.send("t", value=b"4")
    assert not fourth.is_done
    assert fourth.get(timeout=1).offset == 3             # get() sends it
    fifth = producer.send("t", value=b"5")
    producer.flush()
    assert fifth.succeeded() and fifth.get().offset == 4
    sixth = producer.send("t", value=b"6")
    producer.close()                                     # close flushes too
    assert sixth.get().offset == 5


def test_with_a_broker_object_linger_time_is_checked_on_send(url):
    from streamkit.transport import connect
    broker = connect(url)
    # the caller's broker is not written from another thread: no timer
    producer = streamkit.Producer(broker=broker, linger_ms=50, batch_size=1000)
    first = producer.send("t", value=b"1")
    time.sleep(0.1)
    assert not first.is_done
    producer.send("t", value=b"2")
    assert first.is_done
    producer.close()
    at_once = streamkit.Producer(broker=broker)          # linger_ms=0 by default here
    assert at_once.linger_ms == 0 and at_once.send("t", value=b"3").is_done
    at_once.close()
    broker.close()


def test_callbacks_and_errors_go_to_the_future(url):
    producer = streamkit.Producer(broker=url)
    seen, errors = [], []
    producer.send("t", value=b"v").add_callback(seen.append)
    future = producer.send("t", value=b"v", partition=99)
    future.add_errback(errors.append)
    producer.flush()
    assert seen and seen[0].offset == 0
    assert future.failed() and isinstance(errors[0], UnknownTopic)
    late = []
    future.add_errback(late.append)                     # already failed: called at once
    assert late == errors
    with pytest.raises(UnknownTopic):
        future.get()
    producer.close()
    with pytest.raises(InvalidConfig):
        producer.send("t", value=b"late")


def test_producer_acks_all_and_0(url):
    with streamkit.Producer(broker=url, acks="all") as producer:
        assert producer.send("t", value=b"a").get().offset == 0
    with streamkit.Producer(broker=url, acks=0) as producer:
        meta = producer.send("t", value=b"b").get()
        assert meta.offset == -1                      # as Kafka: acks=0 learns no offset
    with streamkit.Consumer("t", broker=url, auto_offset_reset="earliest",
                            consumer_timeout_ms=100) as consumer:
        assert [m.value for m in consumer] == [b"a", b"b"]
    with pytest.raises(InvalidConfig):
        streamkit.Producer(broker=url, acks=2)


def test_consumer_poll_returns_messages_by_partition(url):
    with streamkit.Producer(broker=url, default_partitions=4) as producer:
        for i in range(40):
            producer.send("t", value=b"%d" % i, key=b"%d" % i)
    consumer = streamkit.Consumer("t", broker=url, group_id="g1",
                                  auto_offset_reset="earliest")
    batches = {}
    deadline = time.monotonic() + 5
    while sum(map(len, batches.values())) < 40 and time.monotonic() < deadline:
        for tp, messages in consumer.poll(timeout_ms=1000, max_records=500).items():
            batches.setdefault(tp, []).extend(messages)
    assert set(batches) <= {TopicPartition("t", p) for p in range(4)}
    assert sum(map(len, batches.values())) == 40
    for tp, messages in batches.items():
        assert all(m.partition == tp.partition for m in messages)
        assert [m.offset for m in messages] == list(range(len(messages)))
    assert consumer.poll(timeout_ms=10) == {}
    consumer.commit()
    consumer.close()
    admin = streamkit.Admin(broker=url)
    assert admin.list_groups() == ["g1"]
    lags = admin.group_offsets("g1")
    assert all(isinstance(o, GroupOffset) and o.lag == 0 for o in lags)
    assert sum(o.committed for o in lags) == 40


def test_consumer_group_resumes_after_commit(url):
    with streamkit.Producer(broker=url) as producer:
        for i in range(10):
            producer.send("t", value=b"%d" % i)
    first = streamkit.Consumer("t", broker=url, group_id="g", auto_offset_reset="earliest",
                               enable_auto_commit=False, consumer_timeout_ms=200)
    taken = []
    for message in first:
        taken.append(message.value)
        if len(taken) == 4:
            break
    first.commit()
    first.close(autocommit=False)
    second = streamkit.Consumer("t", broker=url, group_id="g", auto_offset_reset="earliest",
                                consumer_timeout_ms=200)
    assert [m.value for m in second] == [b"%d" % i for i in range(4, 10)]
    second.close()
    third = streamkit.Consumer("t", broker=url, group_id="g", consumer_timeout_ms=100)
    assert list(third) == []                      # auto commit on close saved position
    third.close()


def test_consumer_without_group_reads_all_partitions_and_cannot_commit(url):
    with streamkit.Producer(broker=url, default_partitions=3) as producer:
        for i in range(9):
            producer.send("t", value=b"%d" % i)
    consumer = streamkit.Consumer("t", broker=url, auto_offset_reset="earliest",
                                  consumer_timeout_ms=100)
    assert len(list(consumer)) == 9
    assert consumer.assignment() == {TopicPartition("t", p) for p in range(3)}
    with pytest.raises(InvalidConfig, match="group_id"):
        consumer.commit()
    consumer.seek_to_beginning()
    assert len(list(consumer)) == 9
    consumer.close()
    latest = streamkit.Consumer("t", broker=url, consumer_timeout_ms=50)  # default latest
    assert list(latest) == []
    latest.close()


def test_consumer_timeout_stops_iteration(url):
    consumer = streamkit.Consumer("t", broker=url, consumer_timeout_ms=150)
    start = time.monotonic()
    assert list(consumer) == []
    assert 0.14 <= time.monotonic() - start < 1.0
    consumer.close()


def test_undecodable_message_raises_decode_error_and_is_skipped(url):
    with streamkit.Producer(broker=url) as producer:
        for value in (b'{"n": 1}', b"not json", b'{"n": 3}'):
            producer.send("t", value=value, partition=0)
    consumer = streamkit.Consumer("t", broker=url, group_id="g", auto_offset_reset="earliest",
                                  value_deserializer=json.loads, consumer_timeout_ms=100)
    got = []
    with pytest.raises(DecodeError, match=r"t\[0\]@1"):
        for message in consumer:
            got.append(message.value)
    got += [m.value for m in consumer]
    assert got == [{"n": 1}, {"n": 3}]
    consumer.close()


def test_admin_topics(url):
    with streamkit.Admin(broker=url) as admin:
        admin.create_topic("demo_1", partitions=4, config={"cleanup.policy": "compact"})
        with pytest.raises(TopicExists):
            admin.create_topic("demo_1", partitions=4)
        assert admin.list_topics() == ["demo_1"]
        info = admin.describe_topic("demo_1")
        assert info.partitions == 4 and info.config["cleanup.policy"] == "compact"
        assert info.start_offsets == [0] * 4 and info.end_offsets == [0] * 4
        admin.cleanup("demo_1")
        admin.delete_topic("demo_1")
        assert admin.list_topics() == []
        assert admin.list_groups() == [] and admin.group_offsets("none") == []


def test_clients_accept_an_open_broker(url):
    from streamkit.transport import connect
    broker = connect(url)
    with streamkit.Producer(broker=broker) as producer:
        producer.send("t", value=b"v").get()
    with streamkit.Consumer("t", broker=broker, auto_offset_reset="earliest",
                            consumer_timeout_ms=50) as consumer:
        assert [m.value for m in consumer] == [b"v"]
    assert broker.list_topics() == ["t"]         # still open: the caller owns it
    broker.close()


def test_producer_default_datadir_is_stores(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with streamkit.Producer() as producer:
        producer.send("t", value=b"v").get()
    assert (tmp_path / "stores" / "log" / "t" / "topic.json").exists()


def test_close_with_autocommit_commits_only_what_the_iterator_handed_out(url):
    with streamkit.Producer(broker=url) as producer:
        for i in range(10):
            producer.send("t", value=b"%d" % i)
    consumer = streamkit.Consumer("t", broker=url, group_id="g", auto_offset_reset="earliest",
                                  enable_auto_commit=True, consumer_timeout_ms=200)
    assert next(consumer).value == b"0"
    assert next(consumer).value == b"1"        # 8 more fetched, not handed out
    consumer.close()
    again = streamkit.Consumer("t", broker=url, group_id="g", consumer_timeout_ms=200)
    assert [m.value for m in again] == [b"%d" % i for i in range(2, 10)]
    again.close()
