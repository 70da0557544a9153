"""Pieces every part of the Kafka driver shares: URL and config handling, message
conversion, and turning librdkafka errors into streamkit errors.

Kept apart from ``kafka.py`` so the group consumer, the fetcher and the transactional
producer can use them without importing the broker class.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from confluent_kafka import (TIMESTAMP_LOG_APPEND_TIME, TIMESTAMP_NOT_AVAILABLE,
                             KafkaError, KafkaException)

from streamkit import errors
from streamkit.types import CREATE_TIME, LOG_APPEND_TIME, Message

log = logging.getLogger("streamkit.transport.kafka")
T = TypeVar("T")

#: librdkafka settings as confluent-kafka takes them: strings, numbers, booleans, and
#: objects (callbacks, a logger), plus streamkit's ``{role: {...}}`` sections.
KafkaConfig = dict[str, Any]

#: librdkafka sections of ``config`` that apply to one kind of client only.
ROLE_SECTIONS = ("producer", "consumer", "admin")


#: confluent-kafka's "no offset" sentinels (OFFSET_INVALID, OFFSET_END...) are < 0.
NO_OFFSET = -1001


def bootstrap_servers(url: str) -> str:
    """``kafka://h1:9092,h2:9092`` -> ``h1:9092,h2:9092``; refuses anything else."""
    scheme, sep, rest = url.partition("://")
    if scheme != "kafka" or not sep:
        raise errors.InvalidBrokerURL(f"broker URL {url!r} is not kafka://host:port")
    rest = rest.split("/", 1)[0].split("?", 1)[0]
    hosts = [h.strip() for h in rest.split(",") if h.strip()]
    if not hosts:
        raise errors.InvalidBrokerURL(f"broker URL {url!r} names no host: use "
                                      "kafka://host:port[,host:port]")
    for host in hosts:
        name, colon, port = host.rpartition(":")
        if not colon or not name or not port.isdigit():
            raise errors.InvalidBrokerURL(f"broker URL {url!r}: {host!r} is not host:port")
    return ",".join(hosts)


def client_config(base: KafkaConfig, user: KafkaConfig | None, role: str,
                  defaults: KafkaConfig | None = None) -> KafkaConfig:
    """librdkafka settings for one client: streamkit's ``defaults`` < the user's flat
    settings < the user's ``{role: {...}}`` section < ``base`` (what streamkit must
    set for the driver to keep its contract, e.g. ``bootstrap.servers``)."""
    conf: KafkaConfig = dict(defaults or {})
    user = user or {}
    conf.update({k: v for k, v in user.items() if k not in ROLE_SECTIONS})
    section = user.get(role)
    if isinstance(section, dict):
        conf.update(section)
    conf.update(base)
    conf.setdefault("logger", log)
    return conf


def make_client(cls: Callable[[KafkaConfig], T], conf: KafkaConfig, role: str) -> T:
    """``cls(conf)``, with librdkafka's refusal of a setting as ``InvalidConfig``."""
    try:
        return cls(conf)
    except (KafkaException, ValueError, TypeError) as exc:
        detail = exc.args[0].str() if error_code(exc) is not None else str(exc)
        raise errors.InvalidConfig(f"Kafka {role} settings refused: {detail}") from None


class ConsumedMessage(Protocol):
    """A record confluent-kafka handed over (``error()`` is None): its topic, partition
    and offset are set. (confluent-kafka's ``Message`` types error events too, where
    they may be None; ``kafka_consumer.drain`` keeps records only.)"""

    def topic(self) -> str: ...
    def partition(self) -> int: ...
    def offset(self) -> int: ...
    def timestamp(self) -> tuple[int, int]: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> list[tuple[str, bytes | None]] | None: ...


def to_message(msg: ConsumedMessage) -> Message:
    """A confluent-kafka message as a streamkit Message."""
    ts_type, ts = msg.timestamp()
    headers = msg.headers()
    return Message(msg.topic(), msg.partition(), msg.offset(),
                   ts if ts_type != TIMESTAMP_NOT_AVAILABLE else -1,
                   LOG_APPEND_TIME if ts_type == TIMESTAMP_LOG_APPEND_TIME else CREATE_TIME,
                   msg.key(), msg.value(),
                   [(k, b"" if v is None else v) for k, v in headers] if headers else [])


def to_messages(raw: list[ConsumedMessage]) -> list[Message]:
    """``to_message`` over a batch (the hot path of every consumer)."""
    return [to_message(m) for m in raw]


def error_code(exc: BaseException) -> int | None:
    """The librdkafka error code inside a KafkaException, if any."""
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0].code()
    return None


_UNREACHABLE = {KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN,
                KafkaError._RESOLVE, KafkaError.REQUEST_TIMED_OUT}
_INVALID_CONFIG = {KafkaError.INVALID_CONFIG, KafkaError.INVALID_PARTITIONS,
                   KafkaError.INVALID_REPLICATION_FACTOR, KafkaError.POLICY_VIOLATION,
                   KafkaError.INVALID_REPLICA_ASSIGNMENT, KafkaError.INVALID_REQUEST,
                   KafkaError._INVALID_ARG}


def retrying(call: Callable[[], T], passing: set[int], deadline: float, what: str,
             servers: str, pause: float = 0.05) -> T:
    """``call()``, again (``pause`` seconds apart) while it fails with a librdkafka
    error whose code is in ``passing`` (a state of the cluster that passes: a leader
    or a coordinator not in place yet), up to ``deadline`` (``time.monotonic()``);
    then its error as ``broker_error`` of ``what``."""
    while True:
        try:
            return call()
        except KafkaException as exc:
            if error_code(exc) not in passing or time.monotonic() >= deadline:
                raise broker_error(exc, what, servers) from None
        time.sleep(pause)


def broker_error(exc: BaseException, what: str, servers: str) -> errors.BrokerError:
    """Map a librdkafka failure of ``what`` (e.g. "create topic 'rides'") to the
    streamkit error a user can catch, naming the operation and the servers."""
    code = error_code(exc)
    detail = exc.args[0].str() if code is not None else str(exc)
    if code == KafkaError.TOPIC_ALREADY_EXISTS:
        return errors.TopicExists(f"{what}: topic already exists on {servers}")
    if code in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC,
                KafkaError._UNKNOWN_PARTITION):
        return errors.UnknownTopic(f"{what}: unknown topic or partition on {servers}")
    if code == KafkaError.TOPIC_EXCEPTION:
        return errors.InvalidTopicName(f"{what}: invalid topic name ({detail})")
    if code in _INVALID_CONFIG:
        return errors.InvalidConfig(f"{what}: {detail}")
    if code in _UNREACHABLE:
        return errors.KafkaTimeoutError(
            f"{what}: no answer from Kafka at {servers} (bootstrap.servers): {detail}")
    return errors.BrokerError(f"{what} on {servers}: {detail}")
