"""App settings: keyword arguments, overridable by ``STREAMKIT_*`` environment variables.

An environment variable wins over the value written in the app, so one script can run
against another broker or data directory without an edit (``STREAMKIT_BROKER=kafka://...
python app.py worker``), as twelve-factor apps expect.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from streamkit.errors import ImproperlyConfigured
from streamkit.names import check_app_id


@dataclass
class Settings:
    """Everything an App can be configured with. See docs/reference.md."""

    id: str
    broker: str = "log://"
    store: str = "rocksdb://"
    datadir: str = "stores"
    topic_partitions: int = 4
    consumer_auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    key_serializer: str = "json"
    value_serializer: str = "json"
    #: seconds between offset commits (tables are flushed to their changelog first)
    commit_interval: float = 1.0
    #: largest batch the worker fetches from the broker at once
    max_poll_records: int = 2000
    #: keys each table keeps in memory (``app.Table(cache_size=)`` for one table): the
    #: rest stay in its store; changed keys wait for the commit, which comes early once
    #: half this many are changed
    table_cache_size: int = 100_000
    #: ``acks`` the app's own sends and changelog writes use
    producer_acks: Literal[0, 1, "all"] = 1
    session_timeout: float = 10.0
    broker_config: dict[str, Any] = field(default_factory=dict)
    web_enabled: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    schema_registry_url: str | None = None
    #: serve the Schema Registry REST API from the worker on this port
    registry_port: int | None = None

    def __post_init__(self) -> None:
        self._apply_environment()
        self._validate()

    def _apply_environment(self) -> None:
        for f in fields(self):
            raw = os.environ.get(f"STREAMKIT_{f.name.upper()}")
            if raw is None or f.name in ("id", "broker_config"):
                continue
            setattr(self, f.name, _parse_env(f.name, raw, getattr(self, f.name)))

    def _validate(self) -> None:
        check_app_id(self.id)
        if self.consumer_auto_offset_reset not in ("earliest", "latest"):
            raise ImproperlyConfigured(
                f"consumer_auto_offset_reset={self.consumer_auto_offset_reset!r}: "
                "use 'earliest' or 'latest'")
        if self.processing_guarantee not in ("at_least_once", "exactly_once"):
            raise ImproperlyConfigured(
                f"processing_guarantee={self.processing_guarantee!r}: "
                "use 'at_least_once' or 'exactly_once'")
        if self.topic_partitions < 1:
            raise ImproperlyConfigured(f"topic_partitions={self.topic_partitions}: must be >= 1")
        if self.table_cache_size < 0:
            raise ImproperlyConfigured(
                f"table_cache_size={self.table_cache_size}: must be a number of keys >= 0")
        if self.producer_acks in ("0", "1"):          # (from the environment, or a str)
            self.producer_acks = 0 if self.producer_acks == "0" else 1
        if self.producer_acks not in (0, 1, "all"):
            raise ImproperlyConfigured(f"producer_acks={self.producer_acks!r}: use 0, 1 or 'all'")


def _parse_env(name: str, raw: str, current: object) -> object:
    if name == "registry_port":
        current = 0  # an optional int
    if isinstance(current, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(current, int) and not isinstance(current, bool):
        try:
            return int(raw)
        except ValueError:
            raise ImproperlyConfigured(
                f"STREAMKIT_{name.upper()}={raw!r}: not an integer") from None
    if isinstance(current, float):
        try:
            return float(raw)
        except ValueError:
            raise ImproperlyConfigured(f"STREAMKIT_{name.upper()}={raw!r}: not a number") from None
    return raw
