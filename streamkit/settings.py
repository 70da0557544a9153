"""App settings: keyword arguments, overridable by ``STREAMKIT_*`` environment variables.

An environment variable wins over the value written in the app, so one script can run
against another broker or data directory without an edit (``STREAMKIT_BROKER=kafka://...
python app.py worker``), as twelve-factor apps expect.

``App(...)`` takes Faust's setting names too (``Settings.from_options``): the ones with
a meaning here have it (some under streamkit's own name, ``ALIASES``), the ones without
are accepted and kept in ``Settings.ignored`` (``IGNORED``; docs/reference.md says why
for each), and a name neither knows is a ``TypeError`` that names it, as a misspelt
keyword argument is anywhere in Python.
"""
from __future__ import annotations

import difflib
import logging
import logging.config
import os
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from streamkit.errors import ImproperlyConfigured
from streamkit.names import check_app_id

#: Faust's name of a setting streamkit has under another name -> streamkit's name
ALIASES = {
    "broker_commit_interval": "commit_interval",
    "broker_session_timeout": "session_timeout",
    "broker_max_poll_records": "max_poll_records",
    "url": "broker",                     # Faust's old name of ``broker``
}

#: Faust settings (and ``App`` arguments) accepted without an effect here: what they
#: configure does not exist in streamkit (docs/reference.md, "Faust settings")
IGNORED = frozenset({
    # Faust's asyncio loop and service tree, its sensors
    "loop", "beacon", "monitor", "blocking_timeout", "cython_optimizations",
    "agent_supervisor",
    # Kafka client details Faust passes to aiokafka (``broker_config`` takes
    # librdkafka's settings for kafka://)
    "broker_api_version", "broker_check_crcs", "broker_client_id", "broker_commit_every",
    "broker_commit_livelock_soft_timeout", "broker_heartbeat_interval",
    "broker_max_poll_interval", "broker_rebalance_timeout", "broker_request_timeout",
    "ssl_context", "consumer_api_version", "consumer_max_fetch_size",
    "consumer_group_instance_id", "consumer_metadata_max_age_ms",
    "consumer_connections_max_idle_ms", "producer_api_version",
    "producer_compression_type", "producer_max_batch_size", "producer_max_request_size",
    "producer_partitioner", "producer_request_timeout", "producer_threaded",
    "producer_metadata_max_age_ms", "producer_connections_max_idle_ms",
    # agent.ask() replies (the stream helper's settings), stream internals
    "reply_create_topic", "reply_expires", "reply_to", "reply_to_prefix",
    "stream_buffer_maxsize", "stream_processing_timeout", "stream_publish_on_commit",
    "stream_recovery_delay", "stream_wait_empty", "stream_ack_cancelled_tasks",
    "stream_ack_exceptions", "recovery_consistency_check", "store_check_exists",
    # tables: no standby replicas, no key index, expiry on stream time
    "table_cleanup_interval", "table_key_index_size", "table_standby_replicas",
    # no leader topic to disable
    "topic_disable_leader",
    # the web server is streamkit's own (starlette), its options are its own
    "cache", "canonical_url", "web", "web_application_options", "web_cors_options",
    "web_graph_enabled", "web_in_thread", "web_metrics_enabled", "web_router_enabled",
    "web_ssl_context", "web_stats_enabled", "web_tables_enabled", "web_transport",
    "worker_redirect_stdouts", "worker_redirect_stdouts_level",
})

#: Faust settings that replace one of Faust's classes with the user's: refused, since
#: streamkit's classes are not Faust's (a subclass of one would not fit)
CLASSES = frozenset({
    "Agent", "ConsumerScheduler", "Event", "Schema", "Stream", "Table", "SetTable",
    "GlobalTable", "SetGlobalTable", "TableManager", "Serializers", "Worker",
    "PartitionAssignor", "LeaderAssignor", "Router", "Topic", "HttpClient", "Monitor",
    "config_source",
})

#: broker URL schemes of Faust's Kafka drivers: all mean Kafka here
_KAFKA_SCHEMES = ("aiokafka", "confluent")


#: ``commit_interval`` not given: 1 s, or 0.1 s under exactly_once (decision 143)
UNSET_INTERVAL = -1.0

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
    #: seconds between offset commits (tables are flushed to their changelog first);
    #: unset: 1 s, or 0.1 s under exactly_once (as Kafka Streams: a read_committed
    #: reader, the next stage after a ``group_by`` included, sees records only once
    #: they are committed)
    commit_interval: float = UNSET_INTERVAL
    #: largest batch the worker fetches from the broker at once
    max_poll_records: int = 2000
    #: keys each table keeps in memory (``app.Table(cache_size=)`` for one table): the
    #: rest stay in its store; changed keys wait for the commit, which comes early once
    #: half this many are changed
    table_cache_size: int = 100_000
    #: ``acks`` the app's own sends and changelog writes use
    producer_acks: Literal[0, 1, "all"] = 1
    #: milliseconds the worker lets the sends of agents and timers gather before it
    #: writes them (sooner when there is nothing to read)
    producer_linger_ms: float = 10.0
    session_timeout: float = 10.0
    broker_config: dict[str, Any] = field(default_factory=dict)
    web_enabled: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    schema_registry_url: str | None = None
    #: serve the Schema Registry REST API from the worker on this port
    registry_port: int | None = None
    #: Faust's app version: above 1 the app id becomes ``id_format`` (``<id>-v<n>``),
    #: so its group, internal topics and stores are new ones
    version: int = 1
    id_format: str = "{id}-v{self.version}"
    #: modules to import (packages: with their submodules) before the worker starts,
    #: for the agents, tables, timers and commands they declare; True: ``origin``
    autodiscover: Any = False
    #: the module the app lives in (set by ``streamkit worker module``)
    origin: str | None = None
    #: where table stores live: relative to ``<datadir>/<app id>``
    tabledir: str = "tables"
    #: replicas of the topics the app creates (kafka://; the log keeps one copy)
    topic_replication_factor: int = 1
    #: False: the app creates no topic (its internal topics must exist)
    topic_allow_declare: bool = True
    #: the address the web server binds to, when not ``web_host``
    web_bind: str | None = None
    #: the timezone of crontab schedules that name none (None: local time)
    timezone: Any = None
    #: ``python app.py ...`` shows tracebacks, as with ``--debug``
    debug: bool = False
    #: ``logging.config.dictConfig`` of the worker, applied after its own set-up
    logging_config: dict[str, Any] | None = None
    #: handlers the worker adds to the root logger
    loghandlers: list[logging.Handler] = field(default_factory=list)
    #: prefix of the environment variables read (``STREAMKIT_``)
    env_prefix: str = "STREAMKIT_"
    #: Kafka credentials (kafka://): a dict of librdkafka settings, or an object with
    #: ``username`` and ``password`` (and ``mechanism``, ``ssl_context``) like Faust's
    #: ``SASLCredentials``; they go into ``broker_config``
    broker_credentials: Any = None
    #: Faust settings given without an effect here (see ``IGNORED``)
    ignored: dict[str, Any] = field(default_factory=dict, repr=False)
    #: the id as written in the app, before ``version`` (Faust's ``conf.name``)
    name: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self._apply_environment()
        self._convert_faust_values()
        if self.commit_interval == UNSET_INTERVAL:
            self.commit_interval = 0.1 if self.processing_guarantee == "exactly_once" \
                else 1.0
        self.name = self.id
        if self.version > 1:
            self.id = self.id_format.format(id=self.id, self=self)
        self._validate()

    @classmethod
    def from_options(cls, id: str, options: dict[str, Any]) -> Settings:
        """The settings of ``App(id, **options)``: streamkit's names and Faust's.
        An unknown name is a TypeError naming it."""
        own = {f.name for f in fields(cls) if f.init} - {"ignored"}
        given: dict[str, Any] = {}
        ignored: dict[str, Any] = {}
        for name, value in options.items():
            target = ALIASES.get(name, name)
            if target in own:
                if target in given:
                    raise TypeError(f"App() got both {target!r} and its Faust name "
                                    f"{name if name != target else _alias_of(target)!r}")
                given[target] = value
            elif name in IGNORED:
                ignored[name] = value
            elif name in CLASSES:
                raise ImproperlyConfigured(
                    f"App({name}=...): streamkit uses its own classes; replacing them "
                    "is not supported" if name != "config_source" else
                    "App(config_source=...): not supported; pass the settings as "
                    "keyword arguments")
            else:
                close = difflib.get_close_matches(
                    name, sorted(own | set(ALIASES) | IGNORED), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise TypeError(f"App() got an unexpected keyword argument {name!r}{hint}")
        return cls(id=id, ignored=ignored, **given)

    def _apply_environment(self) -> None:
        for f in fields(self):
            raw = os.environ.get(f"{self.env_prefix}{f.name.upper()}")
            if raw is None or f.name in _NOT_FROM_ENVIRONMENT:
                continue
            setattr(self, f.name, _parse_env(f.name, raw, getattr(self, f.name),
                                             f"{self.env_prefix}{f.name.upper()}"))

    def _convert_faust_values(self) -> None:
        """The forms Faust accepts for settings streamkit has: a list of broker URLs,
        aiokafka:// and confluent:// URLs, ``producer_acks=-1``, an enum processing
        guarantee, a Path data dir, the rocksdict store, ``web_bind``."""
        broker: Any = self.broker
        if not isinstance(broker, str):       # a list of URLs (str or yarl.URL)
            urls = [str(url) for url in broker]
            scheme = urls[0].partition("://")[0] if urls else "kafka"
            broker = f"{scheme}://" + ",".join(u.partition("://")[2] for u in urls)
        scheme, sep, rest = broker.partition("://")
        if sep and scheme in _KAFKA_SCHEMES:
            broker = f"kafka://{rest}"
        self.broker = broker
        if self.producer_acks in (-1, "-1"):
            self.producer_acks = "all"
        if isinstance(self.processing_guarantee, Enum):
            self.processing_guarantee = self.processing_guarantee.value
        self.datadir = str(self.datadir)
        self.store = str(self.store)
        if self.store.startswith("rocksdict://"):
            self.store = "rocksdb://" + self.store[len("rocksdict://"):]
        if self.web_bind is not None:
            self.web_host = self.web_bind
        if isinstance(self.timezone, str):
            from zoneinfo import ZoneInfo
            self.timezone = ZoneInfo(self.timezone)
        if self.broker_credentials is not None:
            self.broker_config = {**_kafka_credentials(self.broker_credentials),
                                  **self.broker_config}

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
        for name in ("topic_partitions", "version", "topic_replication_factor"):
            if getattr(self, name) < 1:
                raise ImproperlyConfigured(f"{name}={getattr(self, name)}: must be >= 1")
        if self.table_cache_size < 0:
            raise ImproperlyConfigured(
                f"table_cache_size={self.table_cache_size}: must be a number of keys >= 0")
        if self.producer_acks in ("0", "1"):          # (from the environment, or a str)
            self.producer_acks = 0 if self.producer_acks == "0" else 1
        if self.producer_acks not in (0, 1, "all"):
            raise ImproperlyConfigured(f"producer_acks={self.producer_acks!r}: use 0, 1 or 'all'")
        if Path(self.tabledir).is_absolute():
            raise ImproperlyConfigured(
                f"tabledir={self.tabledir!r}: must be relative (to <datadir>/<app id>, "
                "which `streamkit reset` deletes whole)")

    def apply_logging(self) -> None:
        """Apply ``logging_config`` and ``loghandlers`` (the worker calls this once its
        own logging is set up)."""
        if self.logging_config:
            logging.config.dictConfig(self.logging_config)
        root = logging.getLogger()
        for handler in self.loghandlers:
            if handler not in root.handlers:
                root.addHandler(handler)


#: fields no environment variable sets (not text, or not a setting)
#: (``version``: the app's identity, like its id; and ``STREAMKIT_VERSION`` is a name
#: other tools may use for the package's version)
_NOT_FROM_ENVIRONMENT = {"id", "version", "id_format", "broker_config",
                         "broker_credentials", "autodiscover", "timezone",
                         "logging_config", "loghandlers", "ignored", "name", "env_prefix"}


def _kafka_credentials(credentials: Any) -> dict[str, Any]:
    """librdkafka's settings for ``broker_credentials``."""
    if isinstance(credentials, dict):
        return dict(credentials)
    if hasattr(credentials, "username") and hasattr(credentials, "password"):
        mechanism = getattr(credentials, "mechanism", None) or "PLAIN"
        return {"security.protocol": "SASL_SSL" if getattr(credentials, "ssl_context", None)
                else "SASL_PLAINTEXT",
                "sasl.mechanism": str(getattr(mechanism, "value", mechanism)),
                "sasl.username": credentials.username,
                "sasl.password": credentials.password}
    raise ImproperlyConfigured(
        f"broker_credentials={credentials!r}: give a dict of Kafka client settings "
        "(librdkafka names) or an object with username and password")


def _alias_of(name: str) -> str:
    return next(faust for faust, own in ALIASES.items() if own == name)


def _parse_env(name: str, raw: str, current: object, variable: str) -> object:
    if name == "registry_port":
        current = 0  # an optional int
    if isinstance(current, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(current, int) and not isinstance(current, bool):
        try:
            return int(raw)
        except ValueError:
            raise ImproperlyConfigured(
                f"{variable}={raw!r}: not an integer") from None
    if isinstance(current, float):
        try:
            return float(raw)
        except ValueError:
            raise ImproperlyConfigured(f"{variable}={raw!r}: not a number") from None
    return raw
