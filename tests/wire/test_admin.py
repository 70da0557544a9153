"""CreatePartitions, DescribeConfigs and altering configs with real admin clients
(kafka-python, confluent-kafka, aiokafka) and with raw requests for the refusals: the
log gains the partitions and holds the configs the clients set."""
from __future__ import annotations

import datetime
import socket
from typing import Any

import pytest

from streamkit.types import OutgoingRecord, TopicPartition
from tests.wire.admin_requests import (ALTER_CONFIGS, BROKER, CREATE_PARTITIONS,
                                       DESCRIBE_CONFIGS, INCREMENTAL_ALTER_CONFIGS, TOPIC)
from tests.wire.conftest import Wire, decode_response, frame_of, kio_module, read_frame

INVALID_PARTITIONS, INVALID_REPLICA_ASSIGNMENT, INVALID_REQUEST, INVALID_CONFIG = \
    37, 39, 42, 40
UNKNOWN_TOPIC_OR_PARTITION = 3


def call(wire: Wire, api_key: int, version: int, body: Any) -> Any:
    with socket.create_connection(("127.0.0.1", wire.port), timeout=5) as sock:
        sock.sendall(frame_of(api_key, version, body))
        data = read_frame(sock)
    assert data is not None, "the server closed the connection"
    return decode_response(data, api_key, version)[1]


def create_partitions_body(*topics: tuple[str, int, Any], validate_only: bool = False
                           ) -> Any:
    cls, module = kio_module(CREATE_PARTITIONS, 3)
    return cls(topics=tuple(module.CreatePartitionsTopic(name=n, count=c, assignments=a)
                            for n, c, a in topics),
               timeout=datetime.timedelta(seconds=5), validate_only=validate_only)


# -- kafka-python -----------------------------------------------------------------------
def test_kafka_python_adds_partitions_and_reads_and_alters_configs(wire: Wire) -> None:
    kafka_admin = pytest.importorskip("kafka.admin", reason="kafka-python is not installed")
    from kafka.errors import InvalidPartitionsError, UnknownTopicOrPartitionError

    wire.log.create_topic("rides", 2, {"retention.ms": "3600000"})
    wire.log.produce("rides", [OutgoingRecord(None, b"kept", partition=1)])
    admin = kafka_admin.KafkaAdminClient(bootstrap_servers=wire.bootstrap)
    try:
        admin.create_partitions({"rides": kafka_admin.NewPartitions(4)})
        assert wire.log.partition_count("rides") == 4
        with pytest.raises(InvalidPartitionsError, match="already has 4 partitions"):
            admin.create_partitions({"rides": kafka_admin.NewPartitions(4)})
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.create_partitions({"missing": kafka_admin.NewPartitions(2)})

        topic = kafka_admin.ConfigResource(kafka_admin.ConfigResourceType.TOPIC, "rides")
        modified = admin.describe_configs([topic])["topic"]["rides"]
        assert {k: v["value"] for k, v in modified.items()} == {"retention.ms": "3600000"}
        every = admin.describe_configs([topic], config_filter="all")["topic"]["rides"]
        assert (every["cleanup.policy"]["value"], every["segment.bytes"]["value"]) == \
            ("delete", "1073741824")

        compact = kafka_admin.ConfigResource(kafka_admin.ConfigResourceType.TOPIC, "rides",
                                             configs={"cleanup.policy": "compact"})
        admin.alter_configs([compact])                   # IncrementalAlterConfigs
        assert wire.log.topic_config("rides") == {"retention.ms": "3600000",
                                                  "cleanup.policy": "compact"}
        # AlterConfigs: kafka-python sends the other configs set on the topic along
        admin.alter_configs([kafka_admin.ConfigResource(
            kafka_admin.ConfigResourceType.TOPIC, "rides",
            configs={"segment.bytes": "1048576"})], incremental=False)
    finally:
        admin.close()
    assert wire.log.topic_config("rides") == {
        "retention.ms": "3600000", "cleanup.policy": "compact", "segment.bytes": "1048576"}
    assert [m.value for m in wire.log.fetch(TopicPartition("rides", 1), 0)] == [b"kept"]


# -- confluent-kafka --------------------------------------------------------------------
def test_confluent_kafka_adds_partitions_describes_and_alters_incrementally(wire: Wire
                                                                           ) -> None:
    admin_module = pytest.importorskip("confluent_kafka.admin")
    from confluent_kafka import KafkaException

    wire.log.create_topic("rides", 1, {"retention.ms": "3600000"})
    admin = admin_module.AdminClient({"bootstrap.servers": wire.bootstrap})
    admin.create_partitions([admin_module.NewPartitions("rides", 3)])["rides"].result(10)
    assert wire.log.partition_count("rides") == 3
    with pytest.raises(KafkaException, match="partitions cannot be removed"):
        admin.create_partitions([admin_module.NewPartitions("rides", 2)])["rides"].result(10)

    resource = admin_module.ConfigResource("topic", "rides")
    configs = admin.describe_configs([resource])[resource].result(10)
    assert (configs["retention.ms"].value, configs["retention.ms"].is_default) == \
        ("3600000", False)
    assert (configs["cleanup.policy"].value, configs["cleanup.policy"].is_default) == \
        ("delete", True)
    broker = admin_module.ConfigResource("broker", "0")
    assert admin.describe_configs([broker])[broker].result(10)["broker.id"].value == "0"

    set_op, append = admin_module.AlterConfigOpType.SET, admin_module.AlterConfigOpType.APPEND
    change = admin_module.ConfigResource("topic", "rides", incremental_configs=[
        admin_module.ConfigEntry("segment.bytes", "1048576", incremental_operation=set_op),
        admin_module.ConfigEntry("cleanup.policy", "compact", incremental_operation=append)])
    admin.incremental_alter_configs([change])[change].result(10)
    assert wire.log.topic_config("rides") == {
        "retention.ms": "3600000", "segment.bytes": "1048576",
        "cleanup.policy": "compact,delete"}

    bad = admin_module.ConfigResource("topic", "rides", incremental_configs=[
        admin_module.ConfigEntry("retention.ms", "soon", incremental_operation=set_op)])
    with pytest.raises(KafkaException, match="retention.ms='soon' is not an integer"):
        admin.incremental_alter_configs([bad])[bad].result(10)
    assert wire.log.topic_config("rides")["retention.ms"] == "3600000"


# -- aiokafka ---------------------------------------------------------------------------
@pytest.mark.anyio
async def test_aiokafka_adds_partitions_and_describes_configs(wire: Wire) -> None:
    admin_module = pytest.importorskip("aiokafka.admin", reason="aiokafka is not installed")
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    wire.log.create_topic("rides", 1)
    admin = admin_module.AIOKafkaAdminClient(bootstrap_servers=wire.bootstrap)
    await admin.start()
    try:
        response = await admin.create_partitions({"rides": admin_module.NewPartitions(2)})
        assert [error for _name, error, _message in response.topic_errors] == [0]
        (described,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "rides")])
    finally:
        await admin.close()
    assert wire.log.partition_count("rides") == 2
    ((error, _message, _type, name, entries),) = described.resources
    assert (error, name) == (0, "rides")
    assert {e[0]: e[1] for e in entries}["retention.ms"] == "604800000"


# -- refusals, with raw requests --------------------------------------------------------
def test_create_partitions_refusals_change_nothing(wire: Wire) -> None:
    wire.log.create_topic("rides", 2)
    _cls, module = kio_module(CREATE_PARTITIONS, 3)
    zero = module.CreatePartitionsAssignment(broker_ids=(0,))
    five = module.CreatePartitionsAssignment(broker_ids=(5,))
    response = call(wire, CREATE_PARTITIONS, 3, create_partitions_body(
        ("rides", 4, (zero, five)), ("rides", 9, None), ("missing", 3, None),
        ("bad name!", 3, None)))
    assert [(r.name, r.error_code) for r in response.results] == [
        ("rides", INVALID_REQUEST), ("rides", INVALID_REQUEST),     # named twice
        ("missing", UNKNOWN_TOPIC_OR_PARTITION), ("bad name!", 17)]

    results = [call(wire, CREATE_PARTITIONS, 3, create_partitions_body(topic)).results[0]
               for topic in [("rides", 4, (zero, five)), ("rides", 3000, None)]]
    assert [r.error_code for r in results] == [INVALID_REPLICA_ASSIGNMENT,
                                               INVALID_PARTITIONS]
    assert "adds at most 1000 in one request" in results[1].error_message

    checked = call(wire, CREATE_PARTITIONS, 3,
                   create_partitions_body(("rides", 4, (zero, zero)), validate_only=True))
    assert checked.results[0].error_code == 0
    assert wire.log.partition_count("rides") == 2                    # only checked
    done = call(wire, CREATE_PARTITIONS, 3, create_partitions_body(("rides", 4, (zero, zero))))
    assert done.results[0].error_code == 0
    assert wire.log.partition_count("rides") == 4


def test_describe_configs_of_what_is_not_served_gets_invalid_request(wire: Wire) -> None:
    wire.log.create_topic("rides", 1)
    cls, module = kio_module(DESCRIBE_CONFIGS, 4)
    resources = tuple(module.DescribeConfigsResource(resource_type=kind, resource_name=name,
                                                     configuration_keys=keys)
                      for kind, name, keys in [(BROKER, "7", None), (8, "0", None),
                                               (TOPIC, "missing", None),
                                               (TOPIC, "rides", ("retention.ms", "nope"))])
    response = call(wire, DESCRIBE_CONFIGS, 4, cls(resources=resources,
                                                    include_synonyms=False,
                                                    include_documentation=False))
    errors = [(r.error_code, r.error_message) for r in response.results]
    assert errors[:3] == [
        (INVALID_REQUEST, "broker '7': this broker is node 0 (give 0 or an empty name)"),
        (INVALID_REQUEST, ("config resource type 8: this broker describes topics (2) "
                           "and itself (4)")),
        (UNKNOWN_TOPIC_OR_PARTITION, "topic 'missing' does not exist")]
    assert [(c.name, c.value, c.config_type) for c in response.results[3].configs] == \
        [("retention.ms", "604800000", 5)]                         # LONG


def test_altering_the_broker_or_a_list_op_on_a_scalar_is_refused(wire: Wire) -> None:
    wire.log.create_topic("rides", 1, {"retention.ms": "1000"})
    cls, module = kio_module(INCREMENTAL_ALTER_CONFIGS, 1)

    def resource(kind: int, name: str, op: int) -> Any:
        config = module.AlterableConfig(name="retention.ms", config_operation=op,
                                        value="5")
        return module.AlterConfigsResource(resource_type=kind, resource_name=name,
                                           configs=(config,))

    response = call(wire, INCREMENTAL_ALTER_CONFIGS, 1, cls(
        resources=(resource(BROKER, "0", 0), resource(TOPIC, "rides", 2)),
        validate_only=False))
    assert [r.error_code for r in response.responses] == [INVALID_REQUEST, INVALID_CONFIG]
    assert "APPEND and SUBTRACT are for list configs" in response.responses[1].error_message
    assert wire.log.topic_config("rides") == {"retention.ms": "1000"}


def test_alter_configs_replaces_the_topics_configs_and_checks_them(wire: Wire) -> None:
    wire.log.create_topic("rides", 1, {"retention.ms": "1000", "segment.bytes": "4096"})
    cls, module = kio_module(ALTER_CONFIGS, 2)

    def alter(*configs: tuple[str, str], validate_only: bool = False) -> Any:
        resource = module.AlterConfigsResource(
            resource_type=TOPIC, resource_name="rides",
            configs=tuple(module.AlterableConfig(name=n, value=v) for n, v in configs))
        response = call(wire, ALTER_CONFIGS, 2, cls(resources=(resource,),
                                                     validate_only=validate_only))
        return response.responses[0]

    bad = alter(("cleanup.policy", "shred"))
    assert bad.error_code == INVALID_CONFIG and "cleanup.policy='shred'" in bad.error_message
    assert alter(("cleanup.policy", "compact"), validate_only=True).error_code == 0
    assert wire.log.topic_config("rides") == {"retention.ms": "1000", "segment.bytes": "4096"}
    assert alter(("cleanup.policy", "compact")).error_code == 0
    # the configs not given return to the log's defaults, as Kafka's AlterConfigs does
    assert wire.log.topic_config("rides") == {"cleanup.policy": "compact"}


def test_a_damaged_topic_is_an_error_naming_the_repair_and_the_server_goes_on(
        wire: Wire) -> None:
    wire.log.create_topic("rides", 1)
    wire.log.create_topic("clicks", 1)
    (wire.datadir / "log" / "rides" / "topic.json").write_text("{not json")
    response = call(wire, CREATE_PARTITIONS, 3, create_partitions_body(("rides", 2, None),
                                                                       ("clicks", 2, None)))
    (damaged, fine) = response.results
    assert damaged.error_code == -1                          # UNKNOWN_SERVER_ERROR
    assert "streamkit log repair rides" in damaged.error_message
    assert fine.error_code == 0 and wire.log.partition_count("clicks") == 2
