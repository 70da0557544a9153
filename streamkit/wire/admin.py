"""CreatePartitions, DescribeConfigs, AlterConfigs and IncrementalAlterConfigs: a
topic's partitions and configs, as the log keeps them.

CreatePartitions grows a topic (the log's ``create_partitions``: partitions are added,
never removed). DescribeConfigs answers a topic's configs (the ones the log acts on,
with its defaults filled in, and any others stored on the topic) and a few of the
broker's. AlterConfigs replaces a topic's configs, IncrementalAlterConfigs changes the
ones it names; both check them with the log's rules (``INVALID_CONFIG`` with the reason).
The broker's own configs cannot be altered here (they are command-line options).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kio.schema.errors import ErrorCode

from streamkit.errors import BrokerError, InvalidConfig, InvalidTopicName, UnknownTopic
from streamkit.log.config import check_topic_config
from streamkit.names import is_topic_name
from streamkit.transport.base import AdminBroker
from streamkit.wire.apis import (ALTER_CONFIGS, CREATE_PARTITIONS, DEFAULT_CONFIG,
                                 DESCRIBE_CONFIGS, INCREMENTAL_ALTER_CONFIGS, NO_THROTTLE,
                                 NODE_ID, TOPIC_CONFIG, Node, build, nested)
from streamkit.wire.protocol import Request, response_type

__all__ = ["ADMIN_HANDLERS", "alter_configs", "create_partitions", "describe_configs",
           "incremental_alter_configs"]

#: Kafka's config resource types (ConfigResource.Type)
TOPIC = 2
BROKER = 4
#: Kafka's config source of the broker's own settings (DescribeConfigsResponse; those
#: of a topic's, TOPIC_CONFIG and DEFAULT_CONFIG, are in apis with CreateTopics)
STATIC_BROKER_CONFIG = 4
#: Kafka's config types (v3+); a config not listed is a string
BOOLEAN, STRING, INT, LONG, DOUBLE, LIST = 1, 2, 3, 5, 6, 7
CONFIG_TYPES = {
    "cleanup.policy": LIST, "retention.ms": LONG, "retention.bytes": LONG,
    "segment.bytes": INT, "segment.ms": LONG, "min.cleanable.dirty.ratio": DOUBLE,
    "delete.retention.ms": LONG, "file.delete.delay.ms": LONG, "flush.messages": LONG,
    "flush.ms": LONG, "index.interval.bytes": INT, "local.retention.bytes": LONG,
    "local.retention.ms": LONG, "max.compaction.lag.ms": LONG, "max.message.bytes": INT,
    "message.downconversion.enable": BOOLEAN, "message.timestamp.after.max.ms": LONG,
    "message.timestamp.before.max.ms": LONG, "message.timestamp.difference.max.ms": LONG,
    "min.compaction.lag.ms": LONG, "min.insync.replicas": INT, "preallocate": BOOLEAN,
    "remote.storage.enable": BOOLEAN, "segment.index.bytes": INT,
    "segment.jitter.ms": LONG, "unclean.leader.election.enable": BOOLEAN,
    "follower.replication.throttled.replicas": LIST,
    "leader.replication.throttled.replicas": LIST,
    "broker.id": INT, "num.partitions": INT, "default.replication.factor": INT,
    "auto.create.topics.enable": BOOLEAN, "offsets.topic.replication.factor": INT,
}
#: IncrementalAlterConfigs' operations
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3

Outcome = tuple[ErrorCode, str | None]
OK: Outcome = (ErrorCode.none, None)


def _admin_broker(node: Node) -> AdminBroker | None:
    return node.broker if isinstance(node.broker, AdminBroker) else None


def _find_topic(node: Node, name: str) -> Outcome:
    """OK if ``name`` is a topic of the log, else Kafka's error for it."""
    if not is_topic_name(name):
        return ErrorCode.invalid_topic_exception, f"invalid topic name {name!r}"
    try:
        found = node.broker.partition_count(name) is not None
    except InvalidTopicName:            # a name the log keeps for itself
        found = False
    except BrokerError as exc:          # a damaged topic.json: the log says which
        return ErrorCode.unknown_server_error, str(exc)
    if not found:
        return ErrorCode.unknown_topic_or_partition, f"topic {name!r} does not exist"
    return OK


# -- CreatePartitions -------------------------------------------------------------------
def create_partitions(node: Node, request: Request) -> Any:
    """Grow each topic to the partitions asked for (or only check, ``validate_only``)."""
    cls = response_type(CREATE_PARTITIONS, request.api_version)
    result_cls = nested(cls, "CreatePartitionsTopicResult")
    names = [t.name for t in request.body.topics]
    results = []
    for topic in request.body.topics:
        message: str | None
        if names.count(topic.name) > 1:
            error, message = ErrorCode.invalid_request, \
                f"topic {topic.name!r} is named more than once in the request"
        else:
            error, message = _create_partitions(node, topic, request.body.validate_only)
        results.append(build(result_cls, name=topic.name, error_code=error,
                             error_message=message))
    return build(cls, throttle_time=NO_THROTTLE, results=tuple(results))


def _create_partitions(node: Node, topic: Any, validate_only: bool) -> Outcome:
    broker = _admin_broker(node)
    if broker is None:
        return ErrorCode.invalid_request, "this broker's log cannot add partitions"
    error, message = _find_topic(node, topic.name)
    if error is not ErrorCode.none:
        return error, message
    have = broker.partition_count(topic.name) or 0
    if topic.count <= have:
        return ErrorCode.invalid_partitions, (
            f"topic {topic.name!r} already has {have} partitions" if topic.count == have
            else f"topic {topic.name!r} has {have} partitions, more than the "
                 f"{topic.count} asked for: partitions cannot be removed")
    if topic.count - have > node.max_partitions:
        # each partition is made in the call, on the event loop (decision 905)
        return ErrorCode.invalid_partitions, (
            f"topic {topic.name!r}: adding {topic.count - have} partitions; this broker "
            f"adds at most {node.max_partitions} in one request")
    if topic.assignments is not None:
        if len(topic.assignments) != topic.count - have or any(
                tuple(a.broker_ids) != (NODE_ID,) for a in topic.assignments):
            return ErrorCode.invalid_replica_assignment, (
                f"topic {topic.name!r}: give one assignment [{NODE_ID}] per new partition "
                f"(this broker is the only node, id {NODE_ID})")
    if validate_only:
        return OK
    try:
        broker.create_partitions(topic.name, topic.count)
    except UnknownTopic as exc:                   # deleted meanwhile by another process
        return ErrorCode.unknown_topic_or_partition, str(exc)
    except InvalidConfig as exc:                  # grown meanwhile by another process
        return ErrorCode.invalid_partitions, str(exc)
    except (BrokerError, OSError) as exc:         # a damaged topic, a full disk
        return _failed(exc)
    return OK


def _failed(exc: BrokerError | OSError) -> Outcome:
    """Kafka's error for a log that could not do what was asked, with the reason."""
    if isinstance(exc, OSError):
        return ErrorCode.kafka_storage_error, f"the log's files: {exc}"
    return ErrorCode.unknown_server_error, str(exc)


# -- DescribeConfigs --------------------------------------------------------------------
def describe_configs(node: Node, request: Request) -> Any:
    """The configs of each topic or broker asked for (all, or the keys named)."""
    cls = response_type(DESCRIBE_CONFIGS, request.api_version)
    result_cls = nested(cls, "DescribeConfigsResult")
    body = request.body
    results = []
    for resource in body.resources:
        entries: list[tuple[str, str, int, bool]] = []
        error, message = _describe(node, resource, entries)
        keys = resource.configuration_keys
        if keys:                                  # null or empty: every config
            entries = [e for e in entries if e[0] in keys]
        configs = tuple(_config_entry(cls, name, value, source, read_only,
                                      getattr(body, "include_synonyms", False))
                        for name, value, source, read_only in entries)
        results.append(build(result_cls, error_code=error, error_message=message,
                             resource_type=resource.resource_type,
                             resource_name=resource.resource_name,
                             configs=configs if error is ErrorCode.none else ()))
    return build(cls, throttle_time=NO_THROTTLE, results=tuple(results))


def _describe(node: Node, resource: Any, entries: list[tuple[str, str, int, bool]]
              ) -> Outcome:
    """Fill ``entries`` with (name, value, source, read only) of one resource."""
    if resource.resource_type == TOPIC:
        name = resource.resource_name
        error, message = _find_topic(node, name)
        if error is not ErrorCode.none:
            return error, message
        broker = _admin_broker(node)
        try:
            full = node.broker.describe_topic(name).config
            set_on_topic = broker.topic_config(name) if broker is not None else full
        except UnknownTopic as exc:               # deleted meanwhile by another process
            return ErrorCode.unknown_topic_or_partition, str(exc)
        except BrokerError as exc:
            return _failed(exc)
        entries += [(key, value, TOPIC_CONFIG if key in set_on_topic else DEFAULT_CONFIG,
                     False) for key, value in sorted(full.items())]
        return OK
    if resource.resource_type == BROKER:
        error, message = _check_broker_name(resource.resource_name)
        if error is ErrorCode.none:
            entries += _broker_configs(node)
        return error, message
    return ErrorCode.invalid_request, (
        f"config resource type {resource.resource_type}: this broker describes topics "
        f"({TOPIC}) and itself ({BROKER})")


def _check_broker_name(name: str) -> Outcome:
    if name in ("", str(NODE_ID)):
        return OK
    return ErrorCode.invalid_request, (
        f"broker {name!r}: this broker is node {NODE_ID} (give {NODE_ID} or an empty name)")


def _broker_configs(node: Node) -> list[tuple[str, str, int, bool]]:
    """What a client may ask of the one node: the settings it creates topics with."""
    return [
        ("auto.create.topics.enable", str(node.auto_create_topics).lower(),
         STATIC_BROKER_CONFIG, True),
        ("broker.id", str(NODE_ID), STATIC_BROKER_CONFIG, True),
        ("default.replication.factor", "1", DEFAULT_CONFIG, True),
        ("listeners", f"PLAINTEXT://{node.host}:{node.port}", STATIC_BROKER_CONFIG, True),
        ("num.partitions", str(node.broker.default_partitions), STATIC_BROKER_CONFIG, True),
        ("offsets.topic.replication.factor", "1", DEFAULT_CONFIG, True),
    ]


def _config_entry(cls: type[Any], name: str, value: str, source: int, read_only: bool,
                  synonyms: bool) -> Any:
    synonym = build(nested(cls, "DescribeConfigsSynonym"), name=name, value=value,
                    source=source)
    return build(nested(cls, "DescribeConfigsResourceResult"), name=name, value=value,
                 read_only=read_only, config_source=source, is_sensitive=False,
                 synonyms=(synonym,) if synonyms else (),
                 config_type=CONFIG_TYPES.get(name, STRING), documentation=None)


# -- AlterConfigs and IncrementalAlterConfigs -------------------------------------------
Change = tuple[dict[str, str], list[str]]      # (configs to set, configs to remove)
#: (resource, configs set on the topic, every config with the defaults) -> the change
Changer = Callable[[Any, dict[str, str], dict[str, str]], Change]


def alter_configs(node: Node, request: Request) -> Any:
    """Replace each topic's configs with those given (the others return to the
    defaults), as Kafka's (deprecated) AlterConfigs does."""
    def change(resource: Any, current: dict[str, str], _full: dict[str, str]) -> Change:
        given = {c.name: c.value for c in resource.configs if c.value is not None}
        return given, [key for key in current if key not in given]
    return _alter(node, request, ALTER_CONFIGS, change)


def incremental_alter_configs(node: Node, request: Request) -> Any:
    """Set, delete, append to or subtract from each named config of each topic (a
    list config not set on the topic is appended to from its default, as in Kafka)."""
    def change(resource: Any, _current: dict[str, str], full: dict[str, str]) -> Change:
        to_set: dict[str, str] = {}
        to_delete: list[str] = []
        for config in resource.configs:
            op, value = config.config_operation, config.value or ""
            if op == SET:
                to_set[config.name] = value
            elif op == DELETE:
                to_delete.append(config.name)
            elif op in (APPEND, SUBTRACT) and CONFIG_TYPES.get(config.name) == LIST:
                items = [i for i in full.get(config.name, "").split(",") if i]
                given = [i.strip() for i in value.split(",") if i.strip()]
                items = items + [i for i in given if i not in items] if op == APPEND \
                    else [i for i in items if i not in given]
                to_set[config.name] = ",".join(items)
            else:
                raise InvalidConfig(f"operation {op} on config {config.name!r}: APPEND "
                                    "and SUBTRACT are for list configs (cleanup.policy)")
        return to_set, to_delete
    return _alter(node, request, INCREMENTAL_ALTER_CONFIGS, change)


def _alter(node: Node, request: Request, api_key: int, change: Changer) -> Any:
    cls = response_type(api_key, request.api_version)
    result_cls = nested(cls, "AlterConfigsResourceResponse")
    results = []
    for resource in request.body.resources:
        error, message = _alter_one(node, resource, change, request.body.validate_only)
        results.append(build(result_cls, error_code=error, error_message=message,
                             resource_type=resource.resource_type,
                             resource_name=resource.resource_name))
    return build(cls, throttle_time=NO_THROTTLE, responses=tuple(results))


def _alter_one(node: Node, resource: Any, change: Changer, validate_only: bool) -> Outcome:
    if resource.resource_type == BROKER:
        error, message = _check_broker_name(resource.resource_name)
        if error is not ErrorCode.none:
            return error, message
        return ErrorCode.invalid_request, \
            "the broker's configs are its command-line options; they cannot be altered"
    if resource.resource_type != TOPIC:
        return ErrorCode.invalid_request, \
            f"config resource type {resource.resource_type}: only topics can be altered"
    name = resource.resource_name
    broker = _admin_broker(node)
    error, message = _find_topic(node, name)
    if error is not ErrorCode.none:
        return error, message
    if broker is None:
        return ErrorCode.invalid_request, "this broker's log cannot alter topic configs"
    try:
        to_set, to_delete = change(resource, broker.topic_config(name),
                                   broker.describe_topic(name).config)
        if validate_only:
            check_topic_config(to_set)
            return OK
        broker.alter_topic_config(name, to_set, delete=to_delete)
    except UnknownTopic as exc:
        return ErrorCode.unknown_topic_or_partition, str(exc)
    except InvalidConfig as exc:
        return ErrorCode.invalid_config, str(exc)
    except (BrokerError, OSError) as exc:
        return _failed(exc)
    return OK


#: the handlers of this module, by api key (``apis.HANDLERS`` takes them)
ADMIN_HANDLERS: dict[int, Callable[[Node, Request], Any]] = {
    CREATE_PARTITIONS: create_partitions,
    DESCRIBE_CONFIGS: describe_configs,
    ALTER_CONFIGS: alter_configs,
    INCREMENTAL_ALTER_CONFIGS: incremental_alter_configs,
}
