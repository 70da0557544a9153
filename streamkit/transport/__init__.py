"""Broker drivers chosen by URL: ``log://``, ``memory://``, ``kafka://``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from streamkit.errors import InvalidBrokerURL
from streamkit.transport.base import Acks, Broker, GroupConsumer

__all__ = ["Acks", "Broker", "GroupConsumer", "connect"]


def connect(url: str = "log://", *, datadir: str | Path = "stores",
            default_partitions: int = 1, config: dict[str, Any] | None = None) -> Broker:
    """Open a broker by URL.

    - ``log://`` is the embedded log in ``<datadir>/log``; ``log://rel/path`` and
      ``log:///abs/path`` name its directory.
    - ``memory://`` (or ``memory://name``) is the same log held in this process's memory;
      every ``connect`` with the same URL in one process shares it.
    - ``kafka://host:port[,host:port]`` is a Kafka cluster (extra ``streamkit[kafka]``);
      ``config`` passes librdkafka settings through.
    """
    scheme, sep, _rest = url.partition("://")
    if not sep:
        raise InvalidBrokerURL(f"broker URL {url!r} has no scheme: use log://, memory:// "
                               "or kafka://host:port")
    if scheme in ("log", "memory"):
        from streamkit.log.broker import open_log_broker
        return open_log_broker(url, datadir=datadir, default_partitions=default_partitions,
                               config=config)
    if scheme == "kafka":
        from streamkit.transport.kafka import KafkaBroker
        return KafkaBroker(url, default_partitions=default_partitions, config=config)
    raise InvalidBrokerURL(f"broker URL {url!r}: unknown scheme {scheme!r} "
                           "(use log://, memory:// or kafka://host:port)")
