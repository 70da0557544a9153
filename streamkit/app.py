"""``App``: what a streamkit program declares (topics, agents, tables, timers) and runs.

The App is the wiring: it holds the settings, the broker connection and the
registries, and builds once what its parts are given instead of the App itself: the
``Sender`` every record goes through, the ``Fetcher`` that feeds the streams, the
``StreamContext`` of its streams and the ``TableContext`` of its tables. Nothing below
this module imports it. Running is in ``streamkit.worker``; the command line in
``streamkit.cli``.
"""
from __future__ import annotations

import importlib
import itertools
import logging
import pkgutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast, overload

from streamkit.agents.agent import Agent
from streamkit.agents.replies import REPLY_EXPIRES, ReplyReader
from streamkit.agents.testing import AgentTestContext
from streamkit.errors import ImproperlyConfigured
from streamkit.internal_topics import INTERNAL, TopicRecord
from streamkit.monitor import Monitor
from streamkit.names import derived_topic_name
from streamkit.settings import Settings
from streamkit.signals import Signal
from streamkit.streams.channel import Channel, SourceReader
from streamkit.streams.context import StreamContext
from streamkit.streams.fetcher import Fetcher
from streamkit.streams.repartition import Repartitioner
from streamkit.streams.stream import Stream
from streamkit.streams.window_join import JoinedStream
from streamkit.tables.context import TableContext
from streamkit.tables.stores import open_store_waiting
from streamkit.tables import table as tables
from streamkit.tables.global_table import GlobalTable
from streamkit.tables.join_buffer import WindowJoinBuffer
from streamkit.tables.sets import SetGlobalTable, SetTable
from streamkit.tables.versioned import VersionedTable
from streamkit.topics import Sender, Topic, TopicJoin
from streamkit.transport import Broker, connect
from streamkit.types import OutgoingRecord, RecordMetadata

logger = logging.getLogger("streamkit.app")
#: the stream class, by a name ``App.Stream`` (Faust's) does not hide in the class
StreamType = Stream


class Timer:
    """A function the worker calls every ``interval`` seconds or on a cron schedule."""

    def __init__(self, fun: Callable[..., Any], *, interval: float | None = None,
                 cron: str | None = None, timezone: Any = None, on_start: bool = False,
                 name: str | None = None, on_leader: bool = False) -> None:
        self.fun = fun
        self.interval = interval
        self.cron = cron
        self.timezone = timezone
        self.on_start = on_start
        #: run only in the worker that is the leader (``Worker.is_leader``)
        self.on_leader = on_leader
        self.name = name or fun.__name__
        self.runs = 0
        self.errors = 0


class Task:
    """A function the worker runs once, when it is ready (``@app.task``)."""

    def __init__(self, fun: Callable[..., Any], *, on_leader: bool = False) -> None:
        self.fun = fun
        self.on_leader = on_leader
        self.name = getattr(fun, "__name__", repr(fun))


class Command:
    """A command of ``python app.py`` (``@app.command``), built by the command line."""

    def __init__(self, fun: Callable[..., Any], options: Sequence[Any],
                 daemon: bool = False, name: str | None = None) -> None:
        self.fun = fun
        self.options = list(options)
        self.daemon = daemon
        self.name = name or fun.__name__.replace("_", "-")


class App:
    """A streamkit application. See DESIGN.md and docs/reference.md for the settings
    (streamkit's and Faust's names)."""

    def __init__(self, id: str, **settings: Any) -> None:
        self.conf = Settings.from_options(id, settings)
        self.agents: dict[str, Agent] = {}
        self.tables: dict[str, tables.Table] = {}
        self.timers: list[Timer] = []
        self.tasks: list[Task] = []
        self.commands: dict[str, Command] = {}
        #: Faust's signals (docs/reference.md, "Signals"): receivers get the app first
        self.on_worker_init = Signal("on_worker_init", self)
        if not callable(getattr(type(self), "on_started", None)):
            # (a subclass's own ``on_started`` method is Faust's other way: kept)
            self.on_started = Signal("on_started", self)
        self.on_partitions_assigned = Signal("on_partitions_assigned", self)
        self.on_partitions_revoked = Signal("on_partitions_revoked", self)
        self.on_rebalance_complete = Signal("on_rebalance_complete", self)
        self.on_before_shutdown = Signal("on_before_shutdown", self)
        self._discovered = False
        self.pages: dict[str, Callable[..., Any]] = {}
        self._topics: dict[str, Topic] = {}
        self._broker: Broker | None = None
        self.monitor = Monitor()
        self.sender = Sender(self._produce, self._create_topic, self.monitor)
        self.fetcher = Fetcher(self.conf.id, self.sender, self.conf.max_poll_records)
        self.stream_context = StreamContext(
            app_id=self.conf.id, sender=self.sender, monitor=self.monitor,
            topic=self.topic, add_stream=self._add_stream, spawn=self.spawn,
            repartition=Repartitioner(self.internal_topic, self.partitions_of))
        self.table_context = TableContext(
            app_id=self.conf.id, sender=self.sender, broker=lambda: self.broker,
            default_partitions=self.conf.topic_partitions, store_url=self.conf.store,
            open_store=self._open_store, spawn=self.spawn, monitor=self.monitor,
            cache_size=self.conf.table_cache_size,
            replicas=self.conf.topic_replication_factor,
            allow_declare=self.conf.topic_allow_declare, add_table=self._add_table,
            topic=self.topic)
        self._spawner: Callable[..., None] | None = None
        self._spawn_queue: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = []
        #: the running worker, set by it (the web views read it)
        self.worker: Any = None
        #: topic names already in the record of the app's topics, by kind
        self._recorded: dict[str, set[str]] = {}
        #: numbers the names of channels and iterable streams
        self._local_names = itertools.count(1)
        #: the replies to this app's asks, on its own reply topic (``agent.ask``)
        self.replies = ReplyReader(
            derived_topic_name(self.conf.id, uuid.uuid4().hex[:16], "reply"),
            lambda: self.broker, self._create_reply_topic)

    def __repr__(self) -> str:
        return f"<App {self.conf.id} broker={self.conf.broker}>"

    # -- the broker ----------------------------------------------------------------
    @property
    def broker(self) -> Broker:
        """The broker connection, opened on first use."""
        if self._broker is None:
            self._broker = connect(self.conf.broker, datadir=self.conf.datadir,
                                   default_partitions=self.conf.topic_partitions,
                                   config=self.conf.broker_config)
        return self._broker

    def close(self) -> None:
        """Close the broker connection: deliver what is queued, free its clients
        (on Kafka, librdkafka's threads and sockets) and its files. It opens again
        on next use. A worker closes it when it stops."""
        broker, self._broker = self._broker, None
        if broker is not None:
            broker.close()

    def _produce(self, topic: str, records: Sequence[OutgoingRecord], acks: Any
                 ) -> Sequence[RecordMetadata]:
        """The sender's way to the broker, at the app's ``producer_acks``."""
        return self.broker.produce(topic, records,
                                   acks=self.conf.producer_acks if acks is None else acks)

    def _create_topic(self, name: str, partitions: int | None, config: dict[str, str],
                      replicas: int) -> None:
        broker = self.broker
        if broker.partition_count(name) is None:
            if not self.conf.topic_allow_declare:
                raise ImproperlyConfigured(f"topic {name!r} does not exist, and "
                                           "topic_allow_declare=False: create it first")
            broker.create_topic(name, partitions=partitions or self.conf.topic_partitions,
                                config=config, replication_factor=replicas, exist_ok=True)

    def _open_store(self, url: str, name: str) -> Any:
        return open_store_waiting(url, self.datadir / self.conf.tabledir, name)

    @property
    def datadir(self) -> Path:
        """``<datadir>/<app id>``: where this app keeps its table stores and the record
        of the topics it created."""
        return Path(self.conf.datadir) / self.conf.id

    def record_topics(self, kind: str, names: Iterable[str]) -> None:
        """Write down topics this app is about to create, before it creates them, so
        ``streamkit reset`` knows them (see ``streamkit.internal_topics``). Topics of a
        ``memory://`` broker end with the process: nothing is written for them."""
        recorded = self._recorded.setdefault(kind, set())
        new = set(names) - recorded
        if not new or self.conf.broker.partition("://")[0] == "memory":
            return
        TopicRecord(self.datadir).add(kind, new)
        recorded |= new

    # -- declaring -----------------------------------------------------------------
    def topic(self, *names: str, **options: Any) -> Topic:
        """A topic description (see DESIGN.md). ``app.topic(name)`` with no options
        returns the topic already declared under that name, if any."""
        if not options and len(names) == 1 and names[0] in self._topics:
            return self._topics[names[0]]
        topic = self._new_topic(*names, **options)
        for name in names:
            self._topics.setdefault(name, topic)
        return topic

    def internal_topic(self, name: str, *, partitions: int | None = None,
                       compacting: bool = False, key_type: Any = None,
                       value_type: Any = None, value_serializer: str | None = None
                       ) -> Topic:
        """A topic the app owns (repartition, changelog), created when needed."""
        topic = self._topics.get(name)
        if topic is None:
            self.record_topics(INTERNAL, [name])
            topic = self._new_topic(name, partitions=partitions, compacting=compacting,
                                    key_type=key_type, value_type=value_type,
                                    value_serializer=value_serializer, internal=True)
            self._topics[name] = topic
            if self.worker is not None:
                topic.declare()
        return topic

    def _new_topic(self, *names: str, **options: Any) -> Topic:
        if options.get("replicas") is None:
            options["replicas"] = self.conf.topic_replication_factor
        return Topic(*names, sender=self.sender,
                     serializers=(self.conf.key_serializer, self.conf.value_serializer),
                     open_stream=self._add_stream, **options)

    def agent(self, channel: Any = None, *, name: str | None = None, concurrency: int = 1,
              sink: list[Any] | None = None, help: str | None = None,
              supervisor_strategy: Any = None, isolated_partitions: bool = False
              ) -> Callable[[Callable[..., Any]], Agent]:
        """Decorate ``async def f(stream)`` to run it over ``channel`` (a Topic, a
        topic name, or None for the topic ``<app id>-<agent name>``).

        Faust's ``supervisor_strategy`` is accepted without effect (a crashed instance
        is restarted alone) and named in the worker's start line;
        ``isolated_partitions=True`` is refused (see ``concurrency``)."""
        if concurrency < 1:
            raise ImproperlyConfigured(f"agent concurrency={concurrency}: must be >= 1")
        if isolated_partitions:
            raise ImproperlyConfigured(
                "agent isolated_partitions=True is not supported: instance i of an "
                "agent reads the partitions p with p % concurrency == i, so "
                "concurrency=<partition count> gives each partition its own instance")

        def register(fun: Callable[..., Any]) -> Agent:
            agent_name = name or fun.__name__
            if agent_name in self.agents:
                raise ImproperlyConfigured(f"two agents named {agent_name!r}")
            if channel is None:
                topic = self.topic(derived_topic_name(
                    self.conf.id, agent_name, what="agent name"))
            elif isinstance(channel, str):
                topic = self.topic(channel)
            else:
                topic = channel
            agent = Agent(fun, topic, name=agent_name, context=self.stream_context,
                          fetcher=self.fetcher, test_context=self._agent_test_context,
                          concurrency=concurrency,
                          sink=[self.topic(s) if isinstance(s, str) else s
                                for s in (sink or [])], help=help,
                          replies=self.replies, view=self._join_view(topic))
            self.agents[agent_name] = agent
            if supervisor_strategy is not None:
                self.conf.ignored[f"agent {agent_name}: supervisor_strategy"] = \
                    supervisor_strategy
            return agent

        return register

    def _join_view(self, channel: Topic) -> Callable[[Stream], Any] | None:
        """For an agent over a stream-stream join (``left.join(right, ...)``): its
        window buffer, a table of the app, and the stream of pairs read through it."""
        if not isinstance(channel, TopicJoin):
            return None
        buffer = WindowJoinBuffer(
            channel.join_name, context=self.table_context,
            left_topic=channel.left.name, right_topic=channel.right.name,
            load_left=channel.left.value_serde.loads_again(),
            load_right=channel.right.value_serde.loads_again(),
            before_ms=channel.before_ms, after_ms=channel.after_ms,
            grace_ms=channel.grace_ms, how=channel.how,
            drops=self.monitor.join_drops)
        self._add_table(buffer)
        load_key = channel.left.key_serde.loads
        return lambda stream: JoinedStream(stream, buffer, load_key)

    @overload
    def Table(self, name: str, *, default: Callable[[], Any] | None = None,
              versioned: None = None, **options: Any) -> tables.Table: ...

    @overload
    def Table(self, name: str, *, default: Callable[[], Any] | None = None,
              versioned: timedelta | float, **options: Any) -> VersionedTable: ...

    def Table(self, name: str, *, default: Callable[[], Any] | None = None,
              versioned: timedelta | float | None = None, **options: Any
              ) -> tables.Table:
        """A table backed by the compacted changelog ``<app id>-<name>-changelog``.
        ``versioned=`` (a timedelta or seconds): a ``VersionedTable`` that keeps each
        key's history that long (``table.as_of(key, when)``, docs/tables.md)."""
        if versioned is not None:
            return self._add_table(VersionedTable(name, versioned=versioned,
                                                  context=self.table_context,
                                                  default=default, **options))
        return self._add_table(tables.Table(name, context=self.table_context,
                                            default=default, **options))

    def GlobalTable(self, name: str, *, default: Callable[[], Any] | None = None,
                    **options: Any) -> tables.Table:
        """A table every worker holds whole (all partitions)."""
        _refuse_versioned("GlobalTable", name, options)
        return self._add_table(GlobalTable(name, context=self.table_context,
                                           default=default, **options))

    def _add_table(self, table: tables.Table) -> tables.Table:
        if table.name in self.tables:
            raise ImproperlyConfigured(f"two tables named {table.name!r}")
        self.tables[table.name] = table
        return table

    def timer(self, interval: float, *, on_leader: bool = False, name: str | None = None,
              traced: bool = True, max_drift_correction: float = 0.1
              ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Call the decorated function (``async`` or not, with or without ``app``)
        every ``interval`` seconds while the worker runs (``on_leader=True``: in the
        leader worker only). Faust's ``traced`` and ``max_drift_correction`` are
        accepted and have no effect."""
        def register(fun: Callable[..., Any]) -> Callable[..., Any]:
            self.timers.append(Timer(fun, interval=float(interval), name=name,
                                     on_leader=on_leader))
            return fun
        return register

    def crontab(self, cron: str, *, timezone: Any = None, on_leader: bool = False,
                traced: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Call the decorated function on a cron schedule (``"*/5 * * * *"``)."""
        from croniter import croniter
        if not croniter.is_valid(cron):
            raise ImproperlyConfigured(f"crontab({cron!r}): not a valid cron expression")

        def register(fun: Callable[..., Any]) -> Callable[..., Any]:
            self.timers.append(Timer(fun, cron=cron, on_leader=on_leader,
                                     timezone=timezone or self.conf.timezone))
            return fun
        return register

    def page(self, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Serve the decorated view at ``path`` on the worker's web server: a
        ``streamkit.web.View`` subclass, Faust's ``async def view(web, request)``, or a
        function of no argument or the request whose dict/list is answered as JSON, str
        as HTML (docs/web.md)."""
        def register(fun: Callable[..., Any]) -> Callable[..., Any]:
            if isinstance(fun, type) and not hasattr(fun, "get_methods"):
                raise TypeError(f"@app.page({path!r}) on class {fun.__name__}: a class "
                                "page must be a subclass of streamkit.web.View")
            self.pages[path] = fun
            return fun
        return register

    # -- Faust's tasks, commands, set tables, discovery ----------------------------------
    def task(self, fun: Callable[..., Any] | None = None, *, on_leader: bool = False,
             traced: bool = True) -> Any:
        """Run the decorated function (``async`` or not, with or without ``app``) once,
        when the worker is ready (tables restored); ``on_leader=True``: only in the
        leader worker. ``@app.task`` and ``@app.task(...)`` both work."""
        def register(task_fun: Callable[..., Any]) -> Callable[..., Any]:
            self.tasks.append(Task(task_fun, on_leader=on_leader))
            return task_fun
        return register(fun) if fun is not None else register

    def command(self, *options: Any, base: Any = None, daemon: bool = False,
                name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Add the decorated function as a command of ``python app.py`` (its docstring
        is the help) with the click options and arguments given
        (``streamkit.cli.option``); see docs/reference.md. ``base`` (a Faust command
        class) is not supported."""
        if base is not None:
            raise ImproperlyConfigured("app.command(base=...): command classes are "
                                       "Faust's; give the options as arguments")

        def register(fun: Callable[..., Any]) -> Callable[..., Any]:
            command = Command(fun, options, daemon=daemon, name=name)
            self.commands[command.name] = command
            return fun
        return register

    def SetTable(self, name: str, **options: Any) -> SetTable:
        """A table whose values are sets: ``table[key].add(x)`` (see SetTable)."""
        _refuse_versioned("SetTable", name, options)
        table = self._add_table(SetTable(name, context=self.table_context, **options))
        return cast(SetTable, table)

    def SetGlobalTable(self, name: str, **options: Any) -> SetGlobalTable:
        """A set table every worker holds whole."""
        _refuse_versioned("SetGlobalTable", name, options)
        table = self._add_table(SetGlobalTable(name, context=self.table_context,
                                               **options))
        return cast(SetGlobalTable, table)

    def discover(self, *modules: str) -> None:
        """Import the modules of ``autodiscover`` (packages with their submodules) and
        ``modules``, so the agents, tables and commands they declare are the app's.
        Once per app; the command line and the worker call it."""
        if self._discovered and not modules:
            return
        self._discovered = True
        for module_name in [*self._discovery_modules(), *modules]:
            module = importlib.import_module(module_name)
            for info in pkgutil.walk_packages(getattr(module, "__path__", []),
                                              prefix=f"{module_name}."):
                if not info.name.rpartition(".")[2].startswith("test"):
                    importlib.import_module(info.name)

    def _discovery_modules(self) -> list[str]:
        wanted = self.conf.autodiscover
        if not wanted:
            return []
        if wanted is True:
            if not self.conf.origin:
                raise ImproperlyConfigured(
                    "autodiscover=True needs origin= (the package to import), or give "
                    "the modules: autodiscover=['proj.agents', ...]")
            return [self.conf.origin]
        return list(wanted() if callable(wanted) else wanted)

    def is_leader(self) -> bool:
        """Whether this process runs the leader worker (False outside a worker)."""
        return self.worker is not None and bool(self.worker.is_leader())

    # -- streams and channels (Faust's app.stream, app.Stream, app.channel) -------------
    def stream(self, channel: Any, **options: Any) -> StreamType:
        """A new stream of ``channel``: a topic (or its name), a channel, or any
        iterable or async iterable (``app.stream([1, 2, 3])``, which ends with it).
        Faust's ``app.Stream`` is the same call."""
        if options:
            raise TypeError(f"app.stream(): options {sorted(options)} are not supported")
        if isinstance(channel, str):
            channel = self.topic(channel)
        if isinstance(channel, Topic):
            return channel.stream()
        name = f"{self.conf.id}-iterable-{next(self._local_names)}"
        stream = StreamType(self.channel(name=name), context=self.stream_context,
                            source=SourceReader(name, channel))
        self.fetcher.add_local_stream(stream)
        return stream

    def Stream(self, channel: Any, **options: Any) -> StreamType:
        """Faust's ``app.Stream(channel)``: ``app.stream(channel)``."""
        return self.stream(channel, **options)

    def channel(self, *, key_type: Any = None, value_type: Any = None,
                maxsize: int | None = 4096, name: str | None = None,
                **options: Any) -> Channel:
        """An in-memory channel an agent can consume (``@app.agent(channel)``) and
        anything in this process can send to (``await channel.send(value=...)``).
        Not durable: what it holds is lost when the process ends (decision 021)."""
        return Channel(name or f"{self.conf.id}-channel-{next(self._local_names)}",
                       sender=self.sender, open_stream=self._add_stream,
                       serializers=(self.conf.key_serializer, self.conf.value_serializer),
                       key_type=key_type, value_type=value_type, maxsize=maxsize,
                       **options)

    def _create_reply_topic(self, name: str) -> None:
        """A reply topic: one partition, replies deleted after a day (Faust's
        ``reply_expires``); the app's own is recorded so that ``streamkit reset``
        deletes it (one named by ``reply_to=`` is the user's)."""
        if name == self.replies.topic:
            self.record_topics(INTERNAL, [name])
        self.broker.create_topic(name, partitions=1, exist_ok=True, config={
            "cleanup.policy": "delete", "retention.ms": str(int(REPLY_EXPIRES * 1000))})

    # -- used while running ------------------------------------------------------------
    def _add_stream(self, channel: Topic, index: int = 0, agent: Any = None
                    ) -> StreamType:
        """A new stream of ``channel``, fed by the fetcher (or, for a channel, by it)."""
        stream = StreamType(channel, context=self.stream_context, index=index, agent=agent)
        if isinstance(channel, Channel):
            channel.subscribe(stream)
            self.fetcher.add_local_stream(stream)
        else:
            self.fetcher.add_stream(stream)
        return stream

    def _agent_test_context(self, agent: Agent) -> AgentTestContext:
        return AgentTestContext(agent, stream_context=self.stream_context,
                                table_context=self.table_context,
                                tables=self.tables.values())

    def uses_avro(self) -> bool:
        """Whether a topic of this app encodes keys or values through a schema registry
        (Avro codecs are the ones that bind to a topic's subjects)."""
        return any(hasattr(serde.codec, "bind")
                   for topic in self._topics.values()
                   for serde in (topic.key_serde, topic.value_serde))

    def partitions_of(self, channel: Topic) -> int:
        count = self.broker.partition_count(channel.name)
        return count or channel.partitions or self.conf.topic_partitions

    def declared_topics(self) -> list[Topic]:
        """Every topic the app declared (each once, however many names it has)."""
        return list({id(topic): topic for topic in self._topics.values()}.values())

    def spawn_with(self, spawner: Callable[..., None] | None) -> None:
        """Run tasks with ``spawner`` from now on (the worker's; None: queue them
        until a worker starts), starting those queued meanwhile."""
        self._spawner = spawner
        if spawner is not None:
            queued, self._spawn_queue = self._spawn_queue, []
            for name, fun, args in queued:
                spawner(fun, *args, name=name)

    def spawn(self, name: str, fun: Callable[..., Any], *args: Any) -> None:
        """Run ``fun(*args)`` as a task of the worker (queued until it starts)."""
        if self._spawner is not None:
            self._spawner(fun, *args, name=name)
        else:
            self._spawn_queue.append((name, fun, args))

    def commit(self) -> None:
        """Flush sends and table changes, then commit what the agents are done with."""
        if self.worker is not None:
            self.worker.commit()

    # -- command line --------------------------------------------------------------------
    def main(self, argv: list[str] | None = None) -> None:
        """Give the script a command line: ``python app.py worker``, ``agents``, ..."""
        from streamkit.cli import app_main
        app_main(self, argv)

    def run_worker(self, **options: Any) -> None:
        """Run a worker in this process until SIGINT/SIGTERM, with the services the
        settings ask for (the web server, the schema registry's REST API)."""
        from streamkit.cli.services import worker_services
        from streamkit.worker import Worker
        Worker(self, services=worker_services(self), **options).run()


def _refuse_versioned(kind: str, name: str, options: dict[str, Any]) -> None:
    """Only ``app.Table`` keeps history (decision 051)."""
    if options.pop("versioned", None) is not None:
        raise ImproperlyConfigured(
            f"{kind} {name!r}: versioned= is only supported on app.Table (a "
            "partitioned table without windows)")
