"""The kafka:// driver beyond the broker contract of test_broker_contract.py, against a
real Kafka-protocol broker (tansu, streamkit broker): connecting, errors that name
the partition or the servers, replication and cleanup left to the cluster, bad URLs
and settings."""
from __future__ import annotations

import time

import pytest

from streamkit import errors
from streamkit.transport import connect
from streamkit.transport.kafka import KafkaBroker
from streamkit.types import OutgoingRecord

pytestmark = pytest.mark.kafka
BROKERS = ("kafka",)     # the ``broker`` fixture of conftest.py is a KafkaBroker here


def test_connect_gives_a_kafka_broker(tansu):
    broker = connect(tansu, default_partitions=3)
    try:
        assert isinstance(broker, KafkaBroker)
        assert broker.default_partitions == 3
        assert broker.servers == tansu.removeprefix("kafka://")
    finally:
        broker.close()


def test_producing_to_a_partition_that_does_not_exist_names_it(broker, topic_name):
    broker.create_topic(topic_name, partitions=2)
    with pytest.raises(errors.BrokerError, match=rf"{topic_name}\[5\]"):
        broker.produce(topic_name, [OutgoingRecord(b"k", b"v", partition=5)])


def test_replication_factor_passes_through_to_kafka(broker, topic_name):
    # The embedded log refuses factors above 1; on Kafka the cluster decides. tansu (one
    # broker) accepts any factor; a real single-broker Kafka answers
    # INVALID_REPLICATION_FACTOR, which becomes InvalidConfig.
    broker.create_topic(topic_name, partitions=2, replication_factor=3)
    assert broker.partition_count(topic_name) == 2


def test_cleanup_is_a_no_op(broker, topic_name):
    broker.produce(topic_name, [OutgoingRecord(b"k", b"v")])
    broker.cleanup(topic_name)
    assert sum(broker.describe_topic(topic_name).end_offsets) == 1


def test_unreachable_broker_fails_fast_naming_the_servers():
    broker = KafkaBroker("kafka://127.0.0.1:1,127.0.0.1:2", timeout=1.5)
    started = time.monotonic()
    with pytest.raises(errors.BrokerError, match=r"127\.0\.0\.1:1,127\.0\.0\.1:2"):
        broker.list_topics()
    with pytest.raises(errors.BrokerError, match=r"127\.0\.0\.1:1"):
        broker.produce("rides", [OutgoingRecord(b"k", b"v")])
    assert time.monotonic() - started < 10
    broker.close()


@pytest.mark.parametrize("url", ["kafka://", "kafka://nohost", "log://x", "kafka://h:p"])
def test_bad_urls_are_refused(url):
    with pytest.raises(errors.InvalidBrokerURL):
        KafkaBroker(url)


def test_an_unknown_librdkafka_setting_is_an_invalid_config(tansu):
    with pytest.raises(errors.InvalidConfig, match="no.such.setting"):
        KafkaBroker(tansu, config={"no.such.setting": "1"})
