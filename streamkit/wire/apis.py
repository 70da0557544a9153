"""The APIs the Kafka-protocol server answers, and their answers from the log.

Each API is served in a range of versions (``SERVED``), and ApiVersions advertises
exactly these ranges. One handler serves every version of its API: it names the values
of the newest version, and ``build`` keeps those the requested version's kio class has
(fields a version lacks are dropped, as Kafka's own generated code does when writing an
older version).
"""
from __future__ import annotations

import datetime
import logging
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from kio.schema.errors import ErrorCode

from streamkit.errors import (BrokerError, InvalidConfig, InvalidTopicName, TopicExists,
                              UnknownTopic)
from streamkit.log.config import DEFAULTS, check_topic_config
from streamkit.names import is_topic_name
from streamkit.transport.base import Broker
from streamkit.wire.producers import ProducerState
from streamkit.wire.protocol import Request, response_type

__all__ = ["API_VERSIONS", "FETCH", "INIT_PRODUCER_ID", "LIST_OFFSETS", "PRODUCE", "SERVED",
           "Node", "handle", "topic_id", "unsupported_version"]

logger = logging.getLogger("streamkit.wire")

PRODUCE = 0
FETCH = 1
LIST_OFFSETS = 2
API_VERSIONS = 18
METADATA = 3
CREATE_TOPICS = 19
DELETE_TOPICS = 20
INIT_PRODUCER_ID = 22
DESCRIBE_CONFIGS = 32
ALTER_CONFIGS = 33
CREATE_PARTITIONS = 37
INCREMENTAL_ALTER_CONFIGS = 44
OFFSET_COMMIT = 8
OFFSET_FETCH = 9
FIND_COORDINATOR = 10
JOIN_GROUP = 11
HEARTBEAT = 12
LEAVE_GROUP = 13
SYNC_GROUP = 14
DESCRIBE_GROUPS = 15
LIST_GROUPS = 16
DELETE_GROUPS = 42
ADD_PARTITIONS_TO_TXN = 24
ADD_OFFSETS_TO_TXN = 25
END_TXN = 26
TXN_OFFSET_COMMIT = 28

#: api key -> (min, max) version served: Kafka 4.0's minimums, and the newest versions
#: whose fields this server fills (librdkafka 2.16 asks for ApiVersions v3, Metadata
#: v12, CreateTopics v4; every version here is tested in tests/wire). Produce, Fetch
#: ListOffsets and InitProducerId are answered by ``streamkit.wire.records``; Fetch
#: stops at v12, the last that names topics (v13 names them by id).
SERVED: dict[int, tuple[int, int]] = {
    PRODUCE: (3, 9),
    FETCH: (4, 12),
    LIST_OFFSETS: (1, 6),
    API_VERSIONS: (0, 4),
    METADATA: (0, 12),
    CREATE_TOPICS: (2, 7),
    DELETE_TOPICS: (1, 6),
    INIT_PRODUCER_ID: (0, 4),
    DESCRIBE_CONFIGS: (1, 4),            # streamkit.wire.admin, these four
    ALTER_CONFIGS: (0, 2),
    CREATE_PARTITIONS: (0, 3),
    INCREMENTAL_ALTER_CONFIGS: (0, 1),
    # consumer groups: streamkit.wire.groups (decision 911)
    OFFSET_COMMIT: (2, 9),
    OFFSET_FETCH: (1, 9),
    FIND_COORDINATOR: (0, 6),
    JOIN_GROUP: (0, 9),
    HEARTBEAT: (0, 4),
    LEAVE_GROUP: (0, 5),
    SYNC_GROUP: (0, 5),
    DESCRIBE_GROUPS: (0, 5),
    LIST_GROUPS: (0, 5),
    DELETE_GROUPS: (0, 2),
    # transactions: streamkit.wire.transactions (decision 960); the clients' versions
    # (AddPartitionsToTxn v4+ are the brokers'), before KIP-890's TRANSACTION_ABORTABLE
    ADD_PARTITIONS_TO_TXN: (0, 3),
    ADD_OFFSETS_TO_TXN: (0, 3),
    END_TXN: (0, 3),
    TXN_OFFSET_COMMIT: (0, 3),
}

#: this broker's node id: the only node, leader of every partition
NODE_ID = 0
#: the namespace of topic ids (decision 903): uuid5(TOPIC_IDS, name)
TOPIC_IDS = uuid.UUID("6f1d3c52-5b8e-4a8e-9d0c-7b3f2d1e9a40")
NO_THROTTLE = datetime.timedelta(0)
_INTERNAL = frozenset({"__consumer_offsets", "__transaction_state"})


@dataclass(frozen=True, slots=True)
class Node:
    """What a handler needs besides the request: the log, how clients reach this
    broker (the address they connected to), the server's settings, and its
    idempotent producers' sequence numbers (shared by every connection)."""

    broker: Broker
    host: str
    port: int
    cluster_id: str
    auto_create_topics: bool = False
    max_partitions: int = 1000
    producers: ProducerState = field(default_factory=ProducerState)


def topic_id(name: str) -> uuid.UUID:
    """A topic's id: the same for a name every time (the log keeps no ids)."""
    return uuid.uuid5(TOPIC_IDS, name)


def build(cls: type[Any], **values: Any) -> Any:
    """An instance of the kio class ``cls`` from ``values``, keeping the fields ``cls``
    has (``values`` name the newest version's fields)."""
    return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})


def nested(cls: type[Any], name: str) -> type[Any]:
    """The class ``name`` of the same API version as ``cls`` (kio generates one module
    per version, holding the message and its nested types)."""
    found: type[Any] = getattr(sys.modules[cls.__module__], name)
    return found


def has_field(cls: type[Any], name: str) -> bool:
    """Whether the kio class ``cls`` has a field ``name`` in its version."""
    return any(f.name == name for f in fields(cls))


# -- ApiVersions ------------------------------------------------------------------------
def api_versions(node: Node, request: Request) -> Any:
    """The served APIs and their version ranges."""
    cls = response_type(API_VERSIONS, request.api_version)
    entry = nested(cls, "ApiVersion")
    keys = tuple(entry(api_key=key, min_version=low, max_version=high)
                 for key, (low, high) in sorted(SERVED.items()))
    return build(cls, error_code=ErrorCode.none, api_keys=keys, throttle_time=NO_THROTTLE)


def unsupported_version() -> Any:
    """Kafka's answer to an ApiVersions request of a version it does not serve: the v0
    response with UNSUPPORTED_VERSION and ApiVersions' own range, so that the client
    asks again in a version both know."""
    cls = response_type(API_VERSIONS, 0)
    low, high = SERVED[API_VERSIONS]
    keys = (nested(cls, "ApiVersion")(api_key=API_VERSIONS, min_version=low,
                                      max_version=high),)
    return cls(error_code=ErrorCode.unsupported_version, api_keys=keys)


# -- Metadata ---------------------------------------------------------------------------
def metadata(node: Node, request: Request) -> Any:
    """This broker as the only node and every partition's leader; the topics asked
    for (all of them for a null list, or an empty one before v1)."""
    cls = response_type(METADATA, request.api_version)
    body = request.body
    asked = body.topics
    if asked is None or (not asked and request.api_version == 0):
        names = [(name, None) for name in sorted(node.broker.list_topics())]
    else:
        names = [(t.name, getattr(t, "topic_id", None)) for t in asked]
    auto_create = node.auto_create_topics and getattr(body, "allow_auto_topic_creation",
                                                      True)
    topics = tuple(_topic_metadata(cls, node, name, asked_id, auto_create)
                   for name, asked_id in names)
    broker = build(nested(cls, "MetadataResponseBroker"), node_id=NODE_ID, host=node.host,
                   port=node.port, rack=None)
    return build(cls, throttle_time=NO_THROTTLE, brokers=(broker,),
                 cluster_id=node.cluster_id, controller_id=NODE_ID, topics=topics,
                 cluster_authorized_operations=-2147483648, error_code=ErrorCode.none)


def _topic_metadata(cls: type[Any], node: Node, name: str | None,
                    asked_id: uuid.UUID | None, auto_create: bool) -> Any:
    topic_cls = nested(cls, "MetadataResponseTopic")
    if name is None and asked_id is not None:
        # a topic asked for by id: the ids are names' uuid5, so look the name up
        name = next((n for n in node.broker.list_topics() if topic_id(n) == asked_id), None)
        if name is None:
            return build(topic_cls, error_code=ErrorCode.unknown_topic_id, name=None,
                         topic_id=asked_id, partitions=())
    if name is None or not is_topic_name(name):
        return build(topic_cls, error_code=ErrorCode.invalid_topic_exception, name=name,
                     topic_id=uuid.UUID(int=0), partitions=())
    count = node.broker.partition_count(name)
    if count is None and auto_create:
        try:
            node.broker.create_topic(name)
        except (InvalidTopicName, InvalidConfig) as exc:
            logger.debug("auto-create of %r refused: %s", name, exc)
        count = node.broker.partition_count(name)
    if count is None:
        return build(topic_cls, error_code=ErrorCode.unknown_topic_or_partition, name=name,
                     topic_id=uuid.UUID(int=0), partitions=())
    part_cls = nested(cls, "MetadataResponsePartition")
    partitions = tuple(
        build(part_cls, error_code=ErrorCode.none, partition_index=i, leader_id=NODE_ID,
              leader_epoch=0, replica_nodes=(NODE_ID,), isr_nodes=(NODE_ID,),
              offline_replicas=())
        for i in range(count))
    return build(topic_cls, error_code=ErrorCode.none, name=name, topic_id=topic_id(name),
                 is_internal=name in _INTERNAL, partitions=partitions,
                 topic_authorized_operations=-2147483648)


# -- CreateTopics -----------------------------------------------------------------------
def create_topics(node: Node, request: Request) -> Any:
    """Create each topic in the log (or only check it, with ``validate_only``)."""
    cls = response_type(CREATE_TOPICS, request.api_version)
    result_cls = nested(cls, "CreatableTopicResult")
    validate_only = getattr(request.body, "validate_only", False)
    results = []
    for topic in request.body.topics:
        error, message, count = _create_topic(node, topic, validate_only)
        created = error is ErrorCode.none
        results.append(build(
            result_cls, name=topic.name,
            topic_id=topic_id(topic.name) if created else uuid.UUID(int=0),
            error_code=error, error_message=message,
            num_partitions=count if created else -1,
            replication_factor=1 if created else -1,
            configs=_created_configs(node, result_cls, topic, validate_only)
            if created and has_field(result_cls, "configs") else None))
    return build(cls, throttle_time=NO_THROTTLE, topics=tuple(results))


#: Kafka's config sources (DescribeConfigs, CreateTopics v5+): set on the topic, a default
TOPIC_CONFIG = 1
DEFAULT_CONFIG = 5


def _created_configs(node: Node, result_cls: type[Any], topic: Any, validate_only: bool
                     ) -> tuple[Any, ...]:
    """The configs a topic got (v5+): Kafka's Java admin client reads them whenever
    ``topic_config_error_code`` is 0, and fails on a null list."""
    given = check_topic_config({c.name: c.value for c in topic.configs
                                if c.value is not None})
    try:
        full = {**DEFAULTS, **given} if validate_only else \
            node.broker.describe_topic(topic.name).config
    except BrokerError:                   # deleted meanwhile by another process
        full = {**DEFAULTS, **given}
    config_cls = nested(result_cls, "CreatableTopicConfigs")
    return tuple(build(config_cls, name=key, value=value, read_only=False,
                       config_source=TOPIC_CONFIG if key in given else DEFAULT_CONFIG,
                       is_sensitive=False)
                 for key, value in sorted(full.items()))


def _create_topic(node: Node, topic: Any, validate_only: bool
                  ) -> tuple[ErrorCode, str | None, int]:
    """(error, message, partitions) of creating one topic."""
    broker = node.broker
    if topic.assignments:
        return (ErrorCode.invalid_request,
                "replica assignments are not served: this broker is the only node", -1)
    count = broker.default_partitions if topic.num_partitions == -1 else topic.num_partitions
    if not 1 <= count <= node.max_partitions:
        # the log creates a topic's partitions in the call, on the server's event loop
        # (decision 905): a limit keeps one request from stalling every client
        return (ErrorCode.invalid_partitions,
                f"partitions={count}: this broker creates 1 to {node.max_partitions}", -1)
    if topic.replication_factor not in (-1, 1):
        return (ErrorCode.invalid_replication_factor,
                f"replication factor {topic.replication_factor}: this broker keeps one copy",
                -1)
    config = {c.name: c.value for c in topic.configs if c.value is not None}
    if not is_topic_name(topic.name):
        return ErrorCode.invalid_topic_exception, f"invalid topic name {topic.name!r}", -1
    if broker.partition_count(topic.name) is not None:
        return ErrorCode.topic_already_exists, f"topic {topic.name!r} already exists", -1
    if validate_only:
        try:
            check_topic_config(config)
        except InvalidConfig as exc:
            return ErrorCode.invalid_config, str(exc), -1
        return ErrorCode.none, None, count
    try:
        broker.create_topic(topic.name, count, config, exist_ok=False)
    except TopicExists as exc:
        return ErrorCode.topic_already_exists, str(exc), -1
    except InvalidTopicName as exc:
        return ErrorCode.invalid_topic_exception, str(exc), -1
    except (InvalidConfig, UnknownTopic) as exc:
        return ErrorCode.invalid_config, str(exc), -1
    return ErrorCode.none, None, count


# -- DeleteTopics -----------------------------------------------------------------------
def delete_topics(node: Node, request: Request) -> Any:
    """Delete each topic, named (v1-v5) or by name or id (v6)."""
    cls = response_type(DELETE_TOPICS, request.api_version)
    result_cls = nested(cls, "DeletableTopicResult")
    body = request.body
    asked = [(t.name, t.topic_id) for t in body.topics] if hasattr(body, "topics") \
        else [(name, None) for name in body.topic_names]
    results = []
    for name, asked_id in asked:
        if name is None and asked_id is not None:
            name = next((n for n in node.broker.list_topics() if topic_id(n) == asked_id),
                        None)
            if name is None:
                results.append(build(result_cls, name=None, topic_id=asked_id,
                                     error_code=ErrorCode.unknown_topic_id,
                                     error_message=None))
                continue
        error, message = _delete_topic(node.broker, name)
        results.append(build(result_cls, name=name, error_code=error, error_message=message,
                             topic_id=topic_id(name) if name else uuid.UUID(int=0)))
    return build(cls, throttle_time=NO_THROTTLE, responses=tuple(results))


def _delete_topic(broker: Broker, name: str | None) -> tuple[ErrorCode, str | None]:
    if name is None or not is_topic_name(name) or broker.partition_count(name) is None:
        return ErrorCode.unknown_topic_or_partition, None
    try:
        broker.delete_topic(name)
    except InvalidTopicName as exc:          # a name the log keeps for itself
        return ErrorCode.invalid_topic_exception, str(exc)
    except BrokerError as exc:
        return ErrorCode.unknown_server_error, str(exc)
    return ErrorCode.none, None


Handler = Callable[[Node, Request], Any]
HANDLERS: dict[int, Handler] = {
    API_VERSIONS: api_versions,
    METADATA: metadata,
    CREATE_TOPICS: create_topics,
    DELETE_TOPICS: delete_topics,
}

# (imported last: its handlers use this module's helpers)
from streamkit.wire.admin import ADMIN_HANDLERS  # noqa: E402

HANDLERS.update(ADMIN_HANDLERS)


def handle(node: Node, request: Request) -> Any:
    """The response to a request of a served API version."""
    return HANDLERS[request.api_key](node, request)
