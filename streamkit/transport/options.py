"""kafka-python's client settings, as ``streamkit.Producer`` / ``Consumer`` take them.

``bootstrap_servers`` always names a Kafka-protocol address: the client opens
``kafka://<servers>`` (decision 130). The connection settings (``client_id``,
``security_protocol``, ``request_timeout_ms``, ...) become librdkafka settings of that
``kafka://`` broker; on the embedded log (``log://``, ``memory://``) there is no
connection, and they are accepted without effect. The table of what each one does on
each broker is in docs/clients.md.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypedDict

from streamkit.errors import InvalidBrokerURL, InvalidConfig

#: kafka-python's port when a bootstrap server names none.
DEFAULT_PORT = 9092

#: kafka-python's compression types (None: uncompressed).
COMPRESSION_TYPES = (None, "gzip", "snappy", "lz4", "zstd")
#: Kafka's security protocols.
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")

Role = Literal["producer", "consumer"]


class ConnectionOptions(TypedDict, total=False):
    """kafka-python settings of a connection, shared by producers and consumers."""

    client_id: str
    request_timeout_ms: float
    api_version: tuple[int, ...] | str | None
    security_protocol: str
    sasl_mechanism: str
    sasl_plain_username: str
    sasl_plain_password: str
    ssl_cafile: str
    ssl_certfile: str
    ssl_keyfile: str
    ssl_password: str


class ProducerOptions(ConnectionOptions, total=False):
    """kafka-python settings of ``KafkaProducer`` beyond streamkit's own arguments."""

    retries: int
    compression_type: str | None
    max_block_ms: float


class ConsumerOptions(ConnectionOptions, total=False):
    """kafka-python settings of ``KafkaConsumer`` beyond streamkit's own arguments."""

    fetch_max_wait_ms: float
    heartbeat_interval_ms: float
    max_poll_interval_ms: float


#: kafka-python name -> (librdkafka name, the client it applies to; None: every client)
_LIBRDKAFKA: dict[str, tuple[str, Role | None]] = {
    "client_id": ("client.id", None),
    "request_timeout_ms": ("socket.timeout.ms", None),
    "security_protocol": ("security.protocol", None),
    "sasl_mechanism": ("sasl.mechanisms", None),
    "sasl_plain_username": ("sasl.username", None),
    "sasl_plain_password": ("sasl.password", None),
    "ssl_cafile": ("ssl.ca.location", None),
    "ssl_certfile": ("ssl.certificate.location", None),
    "ssl_keyfile": ("ssl.key.location", None),
    "ssl_password": ("ssl.key.password", None),
    "retries": ("retries", "producer"),
    "compression_type": ("compression.type", "producer"),
    "fetch_max_wait_ms": ("fetch.wait.max.ms", "consumer"),
    "heartbeat_interval_ms": ("heartbeat.interval.ms", "consumer"),
    "max_poll_interval_ms": ("max.poll.interval.ms", "consumer"),
}
#: accepted for kafka-python's sake, with no effect on any broker (docs/clients.md)
_NO_EFFECT = ("api_version", "max_block_ms")

PRODUCER_OPTIONS = frozenset(ProducerOptions.__annotations__) | \
    frozenset(ConnectionOptions.__annotations__)
CONSUMER_OPTIONS = frozenset(ConsumerOptions.__annotations__) | \
    frozenset(ConnectionOptions.__annotations__)


def check_names(client: str, given: Iterable[str], allowed: frozenset[str]) -> None:
    """Refuse keywords the client does not take, as Python refuses an unknown keyword
    argument (a misspelt setting must not pass unnoticed)."""
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise TypeError(f"{client}() got an unexpected keyword argument "
                        f"{', '.join(repr(n) for n in unknown)}")


def bootstrap_url(servers: str | Sequence[str]) -> str:
    """kafka-python's ``bootstrap_servers`` (``"h1:9092,h2"`` or a list of them) as a
    ``kafka://`` URL; a server without a port gets 9092, as in kafka-python."""
    items = [servers] if isinstance(servers, str) else list(servers)
    hosts = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidBrokerURL(f"bootstrap_servers={servers!r}: each server is a "
                                   "'host:port' string")
        for host in (h.strip() for h in item.split(",")):
            if host:
                has_port = host.rpartition(":")[2].isdigit() and not host.endswith("]")
                hosts.append(host if has_port else f"{host}:{DEFAULT_PORT}")
    if not hosts:
        raise InvalidBrokerURL(f"bootstrap_servers={servers!r} names no server")
    return "kafka://" + ",".join(hosts)


def choose_broker(client: str, broker: Any, bootstrap_servers: str | Sequence[str] | None
                  ) -> Any:
    """The broker a client opens: ``kafka://<bootstrap_servers>``, else ``broker``
    (a URL or a ``Broker`` object), else ``log://``."""
    if bootstrap_servers is None:
        return "log://" if broker is None else broker
    if broker is not None:
        raise InvalidConfig(f"{client}: pass broker= or bootstrap_servers=, not both "
                            "(bootstrap_servers is the Kafka-protocol address: "
                            "broker='kafka://<servers>')")
    return bootstrap_url(bootstrap_servers)


def _check_values(client: str, options: Mapping[str, Any]) -> None:
    compression = options.get("compression_type")
    if compression not in COMPRESSION_TYPES:
        raise InvalidConfig(f"{client} compression_type={compression!r}: use one of "
                            f"{', '.join(str(c) for c in COMPRESSION_TYPES)}")
    protocol = options.get("security_protocol", "PLAINTEXT")
    if protocol not in SECURITY_PROTOCOLS:
        raise InvalidConfig(f"{client} security_protocol={protocol!r}: use one of "
                            f"{', '.join(SECURITY_PROTOCOLS)}")


def broker_config(client: str, role: Role, broker: object, config: dict[str, Any] | None,
                  options: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``config`` to open ``broker`` with: on ``kafka://``, the librdkafka settings
    of ``options`` under the user's own ``config`` (which wins where both set one);
    elsewhere ``config`` as it is. Refuses what cannot hold: connection settings for a
    ``Broker`` object the caller opened, security on the embedded log."""
    _check_values(client, options)
    effective = [name for name in options if name not in _NO_EFFECT]
    if not isinstance(broker, str):
        if effective:
            raise InvalidConfig(f"{client}: {', '.join(effective)} set up a connection the "
                                "client opens; this one was given an open broker")
        return config
    if not broker.startswith("kafka://"):
        protocol = options.get("security_protocol", "PLAINTEXT")
        if protocol != "PLAINTEXT":
            raise InvalidConfig(f"{client}: security_protocol={protocol!r} is for a Kafka "
                                f"cluster (bootstrap_servers=); {broker} is a local log")
        return config
    flat: dict[str, Any] = {}
    section: dict[str, Any] = {}
    for name in effective:
        key, only = _LIBRDKAFKA[name]
        value = options[name]
        if name == "compression_type" and value is None:
            value = "none"
        elif name.endswith("_ms"):
            value = int(value)          # (librdkafka takes whole milliseconds)
        (section if only == role else flat)[key] = value
    user = dict(config or {})
    merged: dict[str, Any] = {**flat, **user}
    own = user.get(role)
    merged[role] = {**section, **(own if isinstance(own, dict) else {})}
    return merged
