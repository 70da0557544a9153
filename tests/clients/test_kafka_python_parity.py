"""kafka-python's KafkaProducer/KafkaConsumer arguments and methods on streamkit's
Producer and Consumer, on the embedded log (log:// and memory://)."""
from __future__ import annotations

import json
import time

import pytest

import streamkit
from streamkit.errors import IllegalStateError, InvalidBrokerURL, InvalidConfig
from streamkit.transport import connect
from streamkit.transport.options import bootstrap_url, broker_config
from streamkit.types import OffsetAndMetadata, OffsetAndTimestamp, TopicPartition

TP0 = TopicPartition("t", 0)


def fill(url: str, topic: str = "t", count: int = 3, partitions: int = 1,
         timestamps: list[int] | None = None) -> None:
    with streamkit.Admin(broker=url) as admin:
        admin.create_topic(topic, partitions=partitions, exist_ok=True)
    with streamkit.Producer(broker=url) as producer:
        for i in range(count):
            producer.send(topic, value=json.dumps({"n": i}).encode(), partition=i % partitions,
                          timestamp_ms=None if timestamps is None else timestamps[i])


def values(consumer: streamkit.Consumer) -> list[int]:
    return sorted(m.value["n"] for m in consumer)


# -- constructor arguments ---------------------------------------------------------------
def test_bootstrap_servers_name_a_kafka_address():
    assert bootstrap_url("localhost:9092") == "kafka://localhost:9092"
    assert bootstrap_url(["h1:9093", "h2"]) == "kafka://h1:9093,h2:9092"
    assert bootstrap_url("h1, h2:1234") == "kafka://h1:9092,h2:1234"
    with pytest.raises(InvalidBrokerURL):
        bootstrap_url([])


def test_admin_takes_bootstrap_servers_too():
    from streamkit.errors import KafkaTimeoutError
    with streamkit.Admin(bootstrap_servers="127.0.0.1:1",
                         config={"socket.timeout.ms": 300}) as admin:
        with pytest.raises(KafkaTimeoutError, match="127.0.0.1:1"):
            admin.list_topics()


def test_bootstrap_servers_and_broker_together_are_refused(url):
    with pytest.raises(InvalidConfig, match="not both"):
        streamkit.Producer(broker=url, bootstrap_servers="localhost:9092")
    with pytest.raises(InvalidConfig, match="not both"):
        streamkit.Consumer("t", broker=url, bootstrap_servers="localhost:9092")


def test_misspelt_settings_fail_naming_them(url):
    with pytest.raises(TypeError, match="'lingr_ms'"):
        streamkit.Producer(broker=url, lingr_ms=5)
    with pytest.raises(TypeError, match="'gruop_id'.*'max_poll_intervall_ms'"):
        streamkit.Consumer("t", broker=url, gruop_id="g", max_poll_intervall_ms=1)
    with pytest.raises(TypeError, match="'fetch_max_wait_ms'"):   # a consumer's setting
        streamkit.Producer(broker=url, fetch_max_wait_ms=10)


def test_kafka_python_settings_are_accepted_on_the_log(url):
    common = dict(client_id="script", request_timeout_ms=3000, api_version=(2, 5, 0),
                  security_protocol="PLAINTEXT")
    with streamkit.Producer(broker=url, retries=5, compression_type="gzip",
                            max_block_ms=1000, acks="all", linger_ms=1, batch_size=16384,
                            **common) as producer:
        assert producer.send("t", value=b"v").get(timeout=10).offset == 0
    with streamkit.Consumer("t", broker=url, group_id="g", auto_offset_reset="earliest",
                            fetch_max_wait_ms=500, heartbeat_interval_ms=3000,
                            max_poll_interval_ms=300000, session_timeout_ms=10000,
                            consumer_timeout_ms=float("inf"), **common) as consumer:
        assert next(consumer).value == b"v"


def test_setting_values_are_checked(url):
    with pytest.raises(InvalidConfig, match="compression_type='brotli'"):
        streamkit.Producer(broker=url, compression_type="brotli")
    with pytest.raises(InvalidConfig, match="security_protocol='TLS'"):
        streamkit.Consumer("t", broker=url, security_protocol="TLS")
    # security on a local log is a mistake, not something to ignore
    with pytest.raises(InvalidConfig, match="Kafka cluster"):
        streamkit.Producer(broker=url, security_protocol="SASL_SSL")


def test_connection_settings_need_a_connection_the_client_opens(url):
    broker = connect(url)
    try:
        with pytest.raises(InvalidConfig, match="client_id"):
            streamkit.Producer(broker, client_id="x")
        with streamkit.Producer(broker, api_version=(0, 10)) as producer:  # no effect
            producer.send("t", value=b"v").get()
    finally:
        broker.close()


def test_settings_become_librdkafka_settings_on_kafka():
    options = {"client_id": "c", "compression_type": None, "retries": 2,
               "request_timeout_ms": 1500.0, "security_protocol": "SASL_SSL",
               "sasl_mechanism": "PLAIN", "api_version": (1, 0)}
    config = broker_config("Producer", "producer", "kafka://h:9092",
                           {"client.id": "mine", "producer": {"retries": 7}}, options)
    assert config == {"client.id": "mine", "socket.timeout.ms": 1500,
                      "security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN",
                      "producer": {"compression.type": "none", "retries": 7}}
    consumer = broker_config("Consumer", "consumer", "kafka://h:9092", None,
                             {"fetch_max_wait_ms": 20, "heartbeat_interval_ms": 1000,
                              "max_poll_interval_ms": 60000})
    assert consumer == {"consumer": {"fetch.wait.max.ms": 20, "heartbeat.interval.ms": 1000,
                                     "max.poll.interval.ms": 60000}}
    # the log is configured by topic settings: nothing of librdkafka reaches it
    assert broker_config("Producer", "producer", "log://", None, options | {
        "security_protocol": "PLAINTEXT"}) is None


# -- subscribe, unsubscribe, assign -------------------------------------------------------
def test_consumer_without_topics_then_subscribe(url):
    """The course's 2023 consumer: KafkaConsumer(bootstrap_servers=..., group_id=...,
    value_deserializer=...), then subscribe(["topic"])."""
    fill(url)
    consumer = streamkit.Consumer(broker=url, group_id="g", auto_offset_reset="earliest",
                                  value_deserializer=json.loads, consumer_timeout_ms=300)
    assert consumer.subscription() is None and consumer.assignment() == set()
    with pytest.raises(IllegalStateError, match="subscribe"):
        consumer.poll(timeout_ms=10)
    consumer.subscribe(["t"])
    assert consumer.subscription() == {"t"}
    assert values(consumer) == [0, 1, 2]
    assert consumer.assignment() == {TP0}
    consumer.close()


def test_subscribe_and_assign_exclude_each_other(url):
    fill(url)
    consumer = streamkit.Consumer("t", broker=url, group_id="g")
    with pytest.raises(IllegalStateError, match="mutually exclusive"):
        consumer.assign([TP0])
    consumer.unsubscribe()
    assert consumer.subscription() is None and consumer.assignment() == set()
    with pytest.raises(IllegalStateError):
        consumer.poll()
    consumer.assign([TP0])
    with pytest.raises(IllegalStateError, match="mutually exclusive"):
        consumer.subscribe(["t"])
    with pytest.raises(IllegalStateError, match="mutually exclusive"):
        streamkit.Consumer(broker=url).subscribe(["t"], pattern="t.*")
    with pytest.raises(ValueError, match="topics or a pattern"):
        streamkit.Consumer(broker=url).subscribe()
    consumer.close()


def test_subscribe_replaces_the_subscription(url):
    fill(url, "a", 2)
    fill(url, "b", 3)
    consumer = streamkit.Consumer("a", broker=url, group_id="g", auto_offset_reset="earliest",
                                  value_deserializer=json.loads, consumer_timeout_ms=300)
    assert values(consumer) == [0, 1]
    consumer.subscribe("b")                       # (a str is one topic)
    assert consumer.subscription() == {"b"}
    assert {m.topic for m in consumer} == {"b"}
    assert consumer.assignment() == {TopicPartition("b", 0)}
    consumer.close()


def test_assign_reads_given_partitions_without_joining_the_group(url):
    fill(url, count=6, partitions=3)
    member = streamkit.Consumer("t", broker=url, group_id="g", auto_offset_reset="earliest",
                                consumer_timeout_ms=300)
    assert len(list(member)) == 6 and len(member.assignment()) == 3
    manual = streamkit.Consumer(broker=url, group_id="g", auto_offset_reset="earliest",
                                value_deserializer=json.loads, consumer_timeout_ms=300)
    tp1 = TopicPartition("t", 1)
    manual.assign([tp1])
    assert manual.assignment() == {tp1}
    assert values(manual) == [1, 4]
    manual.commit()
    # the group member kept all three partitions: nobody joined
    assert len(member.assignment()) == 3
    member.close()
    manual.close()
    committed = {(o.topic, o.partition): o.committed
                 for o in streamkit.Admin(broker=url).group_offsets("g")}
    assert committed[("t", 1)] == 2
    # a new manual consumer of the group starts at its committed offset
    again = streamkit.Consumer(broker=url, group_id="g", auto_offset_reset="earliest",
                               consumer_timeout_ms=200)
    again.assign([tp1])
    assert again.position(tp1) == 2 and again.committed(tp1) == 2
    assert list(again) == []
    again.close()


def test_assign_without_group_cannot_commit(url):
    fill(url)
    consumer = streamkit.Consumer(broker=url, auto_offset_reset="earliest",
                                  consumer_timeout_ms=200)
    consumer.assign([TP0])
    assert len(list(consumer)) == 3
    with pytest.raises(InvalidConfig, match="group_id"):
        consumer.commit()
    consumer.close()


def test_pattern_subscription_follows_new_topics(url):
    fill(url, "rides.a", 2)
    fill(url, "other", 1)
    consumer = streamkit.Consumer(broker=url, group_id="g", auto_offset_reset="earliest",
                                  consumer_timeout_ms=300, metadata_max_age_ms=100)
    consumer.subscribe(pattern=r"rides\..*")
    assert consumer.subscription() == {"rides.a"}
    assert {m.topic for m in consumer} == {"rides.a"}
    fill(url, "rides.b", 1)
    deadline = time.monotonic() + 10
    got: list[str] = []
    while not got and time.monotonic() < deadline:
        got = [m.topic for batch in consumer.poll(timeout_ms=200).values() for m in batch]
    assert got == ["rides.b"]
    assert consumer.subscription() == {"rides.a", "rides.b"}
    consumer.close()


def test_listener_hears_assignments(url):
    fill(url, count=2, partitions=2)
    heard: list[tuple[str, list[TopicPartition]]] = []

    class Listener:
        def on_partitions_revoked(self, revoked):
            heard.append(("revoked", sorted(revoked)))

        def on_partitions_assigned(self, assigned):
            heard.append(("assigned", sorted(assigned)))

    consumer = streamkit.Consumer(broker=url, group_id="g", auto_offset_reset="earliest",
                                  consumer_timeout_ms=300)
    consumer.subscribe(["t"], listener=Listener())
    assert len(list(consumer)) == 2
    consumer.close()
    assert heard[0] == ("assigned", [TopicPartition("t", 0), TopicPartition("t", 1)])


# -- positions ----------------------------------------------------------------------------
def test_seek_to_beginning_end_and_offset(url):
    fill(url, count=4)
    consumer = streamkit.Consumer("t", broker=url, auto_offset_reset="earliest",
                                  value_deserializer=json.loads, consumer_timeout_ms=200)
    assert values(consumer) == [0, 1, 2, 3]
    consumer.seek_to_beginning()
    assert values(consumer) == [0, 1, 2, 3]
    consumer.seek(TP0, 2)
    assert values(consumer) == [2, 3]
    consumer.seek_to_beginning(TP0)
    consumer.seek_to_end(TP0)
    assert consumer.position(TP0) == 4 and values(consumer) == []
    with pytest.raises(IllegalStateError, match="not assigned"):
        consumer.seek(TopicPartition("t", 7), 0)
    with pytest.raises(ValueError):
        consumer.seek(TP0, -1)
    consumer.close()


def test_offsets_for_times(url):
    # timestamps need not grow with offsets: the first record at or after wins
    fill(url, count=5, timestamps=[1000, 3000, 2000, 4000, 2500])
    with streamkit.Consumer(broker=url) as consumer:
        assert consumer.offsets_for_times({TP0: 0}) == {TP0: OffsetAndTimestamp(0, 1000)}
        assert consumer.offsets_for_times({TP0: 1500}) == {TP0: (1, 3000)}
        assert consumer.offsets_for_times({TP0: 3500})[TP0] == OffsetAndTimestamp(3, 4000)
        assert consumer.offsets_for_times({TP0: 4001}) == {TP0: None}
        with pytest.raises(ValueError, match="timestamp"):
            consumer.offsets_for_times({TP0: -1})
        # as a kafka-python script uses it: seek to the answer
        consumer.assign([TP0])
        found = consumer.offsets_for_times({TP0: 2200})[TP0]
        assert found is not None
        consumer.seek(TP0, found.offset)
        assert [m.timestamp for m in consumer.poll(timeout_ms=1000)[TP0]] == [3000, 2000,
                                                                              4000, 2500]


def test_commit_async_calls_back(url):
    fill(url)
    consumer = streamkit.Consumer("t", broker=url, group_id="g", auto_offset_reset="earliest",
                                  enable_auto_commit=False, consumer_timeout_ms=200)
    assert len(list(consumer)) == 3
    calls = []
    future = consumer.commit_async(callback=lambda offsets, error: calls.append(
        (offsets, error)))
    assert future.is_done and future.succeeded()
    assert calls == [({TP0: OffsetAndMetadata(3, "")}, None)]
    assert consumer.committed(TP0) == 3
    consumer.commit_async({TP0: OffsetAndMetadata(1, "meta")})
    assert consumer.committed(TP0) == 1
    consumer.close()
    # without a group the error goes to the callback and the future, not raised
    groupless = streamkit.Consumer("t", broker=url)
    errors = []
    failed = groupless.commit_async(callback=lambda offsets, error: errors.append(error))
    assert failed.failed() and isinstance(errors[0], InvalidConfig)
    groupless.close()


def test_close_commits_only_with_auto_commit(url):
    fill(url)
    for auto, expected in ((False, []), (True, [3])):
        group = f"g-{auto}"
        consumer = streamkit.Consumer("t", broker=url, group_id=group,
                                      auto_offset_reset="earliest",
                                      enable_auto_commit=auto, consumer_timeout_ms=200)
        assert len(list(consumer)) == 3
        consumer.close()
        assert [o.committed for o in streamkit.Admin(broker=url).group_offsets(group)] == \
            expected


# -- metrics ------------------------------------------------------------------------------
def test_consumer_metrics(url):
    fill(url, count=5)
    consumer = streamkit.Consumer("t", broker=url, group_id="g", auto_offset_reset="earliest",
                                  consumer_timeout_ms=200, enable_auto_commit=False)
    assert len(list(consumer)) == 5
    consumer.commit()
    fill(url, count=2)
    metrics = consumer.metrics()
    fetch = metrics["consumer-fetch-manager-metrics"]
    assert fetch["records-consumed-total"] == 5
    assert fetch["records-consumed-rate"] > 0
    assert fetch["fetch-total"] >= 1
    assert fetch["records-lag-max"] == 2
    coordinator = metrics["consumer-coordinator-metrics"]
    assert coordinator["assigned-partitions"] == 1 and coordinator["commit-total"] == 1
    consumer.close()


def test_producer_metrics(url):
    with streamkit.Admin(broker=url) as admin:
        admin.create_topic("t", partitions=1)
    with streamkit.Producer(broker=url, linger_ms=60_000, batch_size=1000) as producer:
        for i in range(10):
            producer.send("t", value=b"%d" % i)
        producer.flush()
        bad = producer.send("t", value=b"x", partition=5)
        producer.flush()
        assert bad.failed()
        metrics = producer.metrics()["producer-metrics"]
    assert metrics["record-send-total"] == 10
    assert metrics["record-error-total"] == 1
    assert metrics["request-total"] == 2
    assert metrics["records-per-request-avg"] == 5.5
    assert metrics["record-send-rate"] > 0


def test_request_timeout_bounds_waits_on_an_unreachable_kafka():
    """bootstrap_servers is a Kafka address; request_timeout_ms bounds how long a call
    waits for it (librdkafka's socket.timeout.ms; 10 s without it)."""
    from streamkit.errors import KafkaTimeoutError
    started = time.monotonic()
    with pytest.raises(KafkaTimeoutError, match="127.0.0.1:1"):
        with streamkit.Producer(bootstrap_servers="127.0.0.1:1",
                                request_timeout_ms=300) as producer:
            producer.partitions_for("t")
    assert time.monotonic() - started < 5


def test_pattern_without_group_keeps_positions_when_a_topic_comes(url):
    fill(url, "rides.a", 2)
    consumer = streamkit.Consumer(broker=url, auto_offset_reset="earliest",
                                  consumer_timeout_ms=300, metadata_max_age_ms=100)
    consumer.subscribe(pattern="rides")
    assert len(list(consumer)) == 2
    fill(url, "rides.b", 1)
    deadline = time.monotonic() + 10
    got: list[tuple[str, int]] = []
    while time.monotonic() < deadline and not got:
        got = [(m.topic, m.offset) for batch in consumer.poll(timeout_ms=200).values()
               for m in batch]
    # rides.a is not read again from its start
    assert got == [("rides.b", 0)]
    consumer.close()
