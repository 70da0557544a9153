"""The worker: runs an App's agents, timers and tables in one anyio task group.

Start-up: declare the topics, start the agents (so ``group_by`` calls register their
repartition topics), join the consumer group, then fetch; the services (the web server,
the schema registry's) start once the first fetched events are with the agents. Every
``commit_interval`` the ``Committer`` commits (``streamkit.commit``: sends, changelogs,
stores, offsets, in that order). SIGINT/SIGTERM: stop fetching, let every agent finish
the event in hand, commit, leave the group, exit 0. Services that run beside the agents
are given by whoever starts the worker (the command line).
"""
from __future__ import annotations

import gc
import hashlib
import inspect
import logging
import os
import signal
import socket
import sys
import time
from datetime import datetime
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import anyio
from anyio.abc import TaskGroup

from streamkit.app import App, Task
from streamkit.commit import Committer
from streamkit.errors import ImproperlyConfigured
from streamkit.streams.join import check_co_partitioned
from streamkit.internal_topics import DEAD_LETTER, INTERNAL
from streamkit.signals import Signal
from streamkit.timers import run_task, run_timer
from streamkit.transport.base import GroupConsumer, TransactionalBroker
from streamkit.types import TopicPartition
import anyio.lowlevel

#: a task run beside the agents while the worker runs, started as anyio's
#: ``TaskGroup.start`` starts one: ``service(worker, task_status=...)`` calls
#: ``task_status.started()`` once it serves (it is cancelled when the worker stops)
Service = Callable[..., Coroutine[Any, Any, None]]

logger = logging.getLogger("streamkit.worker")


class Worker:
    """One worker process of an App."""

    def __init__(self, app: App, *, services: Sequence[Service] = (),
                 install_signal_handlers: bool = True, shutdown_timeout: float = 10.0,
                 status_interval: float | None = None, status_on_terminal: bool = False,
                 web_port: int | None = None, web_host: str | None = None) -> None:
        """``services`` run beside the agents (``streamkit.cli.worker_services`` gives
        the web server and the schema registry's, as the app's settings ask).

        Every ``status_interval`` seconds (None: never) the worker reports events/s,
        events processed, lag and table sizes: logged at info level, or, with
        ``status_on_terminal``, printed to stderr only when a number changed (an idle
        worker's terminal does not scroll)."""
        self.app = app
        self.services = list(services)
        self.install_signal_handlers = install_signal_handlers
        self.shutdown_timeout = shutdown_timeout
        self.status_interval = status_interval
        self.status_on_terminal = status_on_terminal
        self.consumer: GroupConsumer | None = None
        self.committer = Committer(app.fetcher, app.sender, app.tables.values(),
                                   app.monitor)
        #: the schema registry the app's Avro codecs use, when it has any
        self.registry: Any = None
        self._stop: anyio.Event | None = None
        #: set by a table whose changed keys reached half its cache size (``commit_soon``)
        self._commit_wanted: anyio.Event | None = None
        self._agents_running = 0
        self._closing = False
        self._agents_done: anyio.Event | None = None
        self._stopping = False
        self._routed_back: Any = None
        self.ready = False
        #: the task group of timers, tasks and services while the worker runs
        self._services: TaskGroup | None = None
        #: async signal receivers called when no task group could run them (at close)
        self._late: list[Awaitable[Any]] = []
        if web_port is not None:
            app.conf.web_port = web_port
        if web_host is not None:
            app.conf.web_host = web_host

    def run(self) -> None:
        """Run until stopped (blocking)."""
        anyio.run(self.run_async)

    # -- lifecycle -----------------------------------------------------------------------
    async def run_async(self) -> None:
        app = self.app
        app.worker = self
        self._started = time.monotonic()
        # a worker allocates a batch of events at a time and keeps few: collect the
        # young generation less often, and never scan what start-up created
        gc_thresholds = gc.get_threshold()
        gc.set_threshold(50_000, 20, 100)
        gc.freeze()
        self._stop = anyio.Event()
        if self._stopping:  # stop() came before the run began: not forgotten
            self._stop.set()
        self._commit_wanted = anyio.Event()
        app.table_context.commit_soon = self.commit_soon
        self._check_guarantee()
        app.discover()
        if app.conf.ignored:
            logger.info("settings without effect here: %s (docs/reference.md, \"Faust "
                        "settings\")", ", ".join(sorted(app.conf.ignored)))
        try:
            self.registry = self._use_schema_registry()
            self._declare_topics()
            async with anyio.create_task_group() as services:
                self._services = services
                self._signal(app.on_worker_init)
                async with anyio.create_task_group() as agents:
                    self._start_agents(agents)
                    # let every agent reach its first await: group_by registers there
                    for _ in range(10):
                        await anyio.lowlevel.checkpoint()
                    self._declare_topics()
                    self._record_topics()
                    self._open_tables()
                    # the transactional id first: taking it finishes a commit our
                    # previous life left prepared (its markers and offsets), so the
                    # group's offsets and the changelogs we restore from are whole
                    self._begin_transactions()
                    self.consumer = self.committer.consumer = self._join_group()
                    app.fetcher.on_first_assignment = self._on_ready
                    if not app.fetcher.topics():
                        # nothing to consume, so no assignment will come: ready now
                        # (its tasks and ``on_started`` still run)
                        app.fetcher.on_first_assignment = None
                        self._on_ready()
                    if self.install_signal_handlers:
                        # first: tasks start in order, so the handlers are in place
                        # before the first poll logs "ready" (a signal sent on that
                        # line must stop the worker gracefully, not kill it)
                        services.start_soon(self._watch_signals)
                    services.start_soon(self._fetch)
                    services.start_soon(self._start_services, services)
                    services.start_soon(self._commit_loop)
                    services.start_soon(self._flush_loop)
                    for timer in app.timers:
                        services.start_soon(run_timer, timer, app, self.is_leader)
                    for table in app.tables.values():
                        services.start_soon(table.run_background)
                    if self.status_interval:
                        services.start_soon(self._status_loop)
                    logger.info("worker %s started: agents %s, topics %s", app.conf.id,
                                ", ".join(f"@{a}" for a in app.agents),
                                ", ".join(app.fetcher.topics()))
                    await self._stop.wait()
                    await app.on_before_shutdown.asend()
                    self._stop_streams()
                    with anyio.move_on_after(self.shutdown_timeout) as scope:
                        await self._wait_agents_done(agents)
                    if scope.cancelled_caught:
                        logger.warning("agents did not finish in %.0fs; cancelling them",
                                       self.shutdown_timeout)
                    agents.cancel_scope.cancel()
                self._final_commit()
                services.cancel_scope.cancel()
        finally:
            self._services = None
            joined = self.consumer is not None
            self._close()
            if joined:
                self._log_summary()
            try:
                app.close()          # (after the summary, which asks the broker)
            except Exception:
                logger.exception("closing the broker connection failed")
            gc.set_threshold(*gc_thresholds)
            gc.unfreeze()
            with anyio.CancelScope(shield=True):
                late, self._late = self._late, []
                for awaitable in late:
                    await awaitable

    async def _start_services(self, group: TaskGroup) -> None:
        """Start the services (the web server imports and binds for tens of
        milliseconds) once the first poll's events are with the agents: this task was
        queued just after the fetch task, and asyncio runs ready tasks in order, so
        yielding once puts it behind the agents the first poll woke. A worker still
        joining (Kafka) gets its services as soon, since its first poll returns at once.
        """
        await anyio.lowlevel.checkpoint()
        for service in self.services:
            await group.start(service, self)

    @property
    def transaction(self) -> Any:
        """The open Kafka transaction under processing_guarantee="exactly_once"."""
        return self.committer.transaction

    def committed_offsets(self) -> dict[TopicPartition, int]:
        """The offsets this worker committed, per partition it owns."""
        return dict(self.committer.committed)

    def _on_ready(self) -> None:
        assert self.consumer is not None
        self.ready = True
        # from now on a table write to a partition this worker gave up is dropped
        self.app.table_context.owning = lambda: self.ready
        logger.info("worker %s ready: %d partitions assigned, tables restored in %.2f s",
                    self.app.conf.id, len(self.consumer.assignment()),
                    time.monotonic() - self._started)
        started: Any = self.app.on_started
        if isinstance(started, Signal):
            self._signal(started)
        elif self._services is not None:        # an App subclass's method (Faust's way)
            self._services.start_soon(run_task, Task(started), self.app)
        for task in self.app.tasks:
            if self._services is not None and (not task.on_leader or self.is_leader()):
                self._services.start_soon(run_task, task, self.app)

    def _signal(self, signal: Signal, *args: Any) -> None:
        """Send ``signal``: its plain receivers run now, its async ones as tasks
        beside the agents (or, once those are gone, when the worker has closed)."""
        for awaitable in signal.send(*args):
            self._await_soon(awaitable)

    def _await_soon(self, awaitable: Awaitable[Any]) -> None:
        """Await ``awaitable`` in a task beside the agents, or, once those are gone,
        when the worker has closed."""
        if self._services is not None:
            self._services.start_soon(_awaited, awaitable)
        else:
            self._late.append(awaitable)

    def _call_soon(self, callback: Callable[[], Any], what: str) -> None:
        """Call ``callback()`` now, or run it as a task if it is ``async``; what it
        raises is logged, as a signal receiver's."""
        try:
            result = callback()
        except Exception:
            logger.exception("%s raised", what)
            return
        if inspect.isawaitable(result):
            self._await_soon(_logged(result, what))

    def is_leader(self) -> bool:
        """Whether this worker is its app's leader (Faust's ``on_leader``): it holds
        partition 0 of the first topic the app consumes (by name), or the app consumes
        none. One worker at a time is, however partitions move between workers."""
        topics = self.app.fetcher.topics()
        if not topics:
            return True
        consumer = self.consumer
        return consumer is not None and \
            TopicPartition(min(topics), 0) in consumer.assignment()

    @property
    def stopping(self) -> bool:
        """Whether the worker was asked to stop."""
        return self._stopping

    def stop(self) -> None:
        """Ask the worker to stop gracefully."""
        self._stopping = True
        if self._stop is not None:
            self._stop.set()

    def _check_guarantee(self) -> None:
        if (self.app.conf.processing_guarantee == "exactly_once"
                and not isinstance(self.app.broker, TransactionalBroker)):
            raise ImproperlyConfigured(
                f"processing_guarantee='exactly_once' needs a broker with transactions "
                f"(log://, memory:// or kafka://); {self.app.conf.broker} has none. Use "
                "at_least_once.")

    def _begin_transactions(self) -> None:
        """exactly_once: every record the app writes goes into the transaction."""
        if self.app.conf.processing_guarantee != "exactly_once":
            return
        # one id per worker data directory (which one live worker holds at a time),
        # as Kafka Streams keeps its process id in its state directory: a worker
        # restarted after a crash takes the same id, which aborts what its previous
        # life left open at once, rather than after the transaction timeout
        place = os.path.abspath(self.app.conf.datadir)
        if not self.app.conf.store.startswith("rocksdb"):
            place += f"-{os.getpid()}"        # (no store lock makes the folder one's)
        transactional_id = (f"{self.app.conf.id}-{socket.gethostname()}-"
                            f"{hashlib.sha256(place.encode()).hexdigest()[:12]}")
        broker = self.app.broker
        assert isinstance(broker, TransactionalBroker)     # checked by _check_guarantee
        transaction = broker.transactional_producer(transactional_id)
        self.committer.transaction = transaction
        transaction.begin()
        self._routed_back = self.app.sender.route(
            lambda topic, records, acks: transaction.send(topic, records))

    def _use_schema_registry(self) -> Any:
        """Point Avro codecs at this app's registry (the ``_schemas`` topic of its
        broker, or ``schema_registry_url``) when the app uses Avro."""
        conf = self.app.conf
        if (not self.app.uses_avro() and conf.schema_registry_url is None
                and conf.registry_port is None):
            return None
        from streamkit.avro import SchemaRegistry, use_registry
        return use_registry(conf.schema_registry_url or SchemaRegistry(self.app.broker),
                            datadir=conf.datadir)

    def _open_tables(self) -> None:
        """Open the tables, each partitioned like the topics the app consumes (a table
        with fewer partitions than its source could not hold their keys)."""
        app = self.app
        counts = [app.broker.partition_count(name) or 0 for name in app.fetcher.topics()]
        for table in app.tables.values():
            if table.context is not app.table_context:   # after a test context
                table.bind(app.table_context)
            table.open(source_partitions=max(counts, default=0))
        check_co_partitioned(app.stream_context.joins.values(), app.broker.partition_count)

    def _record_topics(self) -> None:
        """Derive the dead-letter topic of every topic the app consumes (a name problem
        shows now, not at the first bad message), and write down the topics the app owns
        before the tables create their changelogs (repartition topics are written down
        by ``App.internal_topic``)."""
        app = self.app
        app.record_topics(DEAD_LETTER, app.fetcher.dead_letter_topics())
        app.record_topics(INTERNAL, [table.changelog_topic for table in app.tables.values()])

    def _declare_topics(self) -> None:
        app = self.app
        for topic in app.declared_topics():
            topic.declare()
        for agent in app.agents.values():
            agent.channel.declare()

    def _start_agents(self, agents: TaskGroup) -> None:
        app = self.app

        self._agents_done = anyio.Event()

        def spawn(fun: Any, *args: Any, name: str | None = None) -> None:
            agents.start_soon(self._tracked, fun, *args, name=name)

        app.spawn_with(spawn)
        for agent in app.agents.values():
            for stream in agent.create_streams():
                spawn(agent.run, stream, name=f"agent @{agent.name}")

    async def _tracked(self, fun: Any, *args: Any) -> None:
        self._agents_running += 1
        try:
            await fun(*args)
        finally:
            self._agents_running -= 1
            if self._agents_running == 0 and self._agents_done is not None:
                self._agents_done.set()

    def _join_group(self) -> GroupConsumer:
        app = self.app
        return app.broker.group_consumer(
            app.conf.id, app.fetcher.topics(),
            auto_offset_reset=app.conf.consumer_auto_offset_reset,
            enable_auto_commit=False,
            session_timeout=app.conf.session_timeout,
            on_assign=self.on_partitions_assigned,
            on_revoke=self.on_partitions_revoked,
            on_lost=self.on_partitions_lost,
            copartitioned=any(not t.is_global for t in app.tables.values()),
            # (an upstream app's aborted outputs are never events)
            isolation_level="read_committed")

    def _stop_streams(self) -> None:
        fetcher = self.app.fetcher
        fetcher.stop()
        shared = {name for name, subs in fetcher.subscriptions.items() if len(subs) > 1}
        for stream in fetcher.streams():
            stream.drain_on_stop = any(name in shared for name in stream.channel.topics)
            stream.stop()

    async def _wait_agents_done(self, agents: TaskGroup) -> None:
        if self._agents_running and self._agents_done is not None:
            await self._agents_done.wait()

    def _final_commit(self) -> None:
        try:
            self.commit()
        except Exception:
            logger.exception("final commit failed")

    def _close(self) -> None:
        app = self.app
        # leaving the group revokes every partition: commit nothing more here (a
        # graceful stop has committed already; after an error nothing may be)
        self._closing = True
        if self.committer.transaction is not None:
            self.committer.transaction.close()  # aborts what was not committed
            self.committer.transaction = None
        if self._routed_back is not None:
            app.sender.route(*self._routed_back)
            self._routed_back = None
        app.table_context.owning = lambda: False
        app.table_context.commit_soon = _nothing
        if self.consumer is not None:
            try:
                self.consumer.close(commit=False)
            except Exception:
                logger.exception("leaving the consumer group failed")
        for table in app.tables.values():
            table.close()
        app.spawn_with(None)
        app.worker = None

    # -- tasks ---------------------------------------------------------------------------
    async def _fetch(self) -> None:
        assert self.consumer is not None
        fetcher = self.app.fetcher
        while True:
            await fetcher.run(self.consumer)
            if not fetcher.subscription_changed or self._stopping:
                return
            # group_by was first called after the worker joined: join again with the
            # new topic in the subscription
            fetcher.subscription_changed = False
            self.commit()
            self.consumer.close(commit=False)
            self._declare_topics()
            self._record_topics()
            self.consumer = self.committer.consumer = self._join_group()

    async def _commit_loop(self) -> None:
        interval = self.app.conf.commit_interval
        while True:
            with anyio.move_on_after(interval):
                assert self._commit_wanted is not None
                await self._commit_wanted.wait()
            self._commit_wanted = anyio.Event()
            if self.committer.transaction is not None:
                await self._commit_between_events()
            else:
                self.commit()
            self.app.monitor.sample()

    async def _commit_between_events(self) -> None:
        """exactly_once: commit once every agent is between two events. An agent that
        awaits inside an event (a sleep, a call out) has made some of its effects and
        not others; committed then, the effects made so far would be visible without
        the event's offset, and a restart would make them again."""
        gate = anyio.Event()
        try:
            streams = self.app.fetcher.pause_for_commit(gate)
            limit = max(1.0, 4 * self.app.conf.commit_interval)
            with anyio.move_on_after(limit):
                # (each stream parks when its agent asks for the next event: a look
                # every millisecond is simpler than an event per stream)
                while any(stream.holds_event() for stream in streams):  # noqa: ASYNC110
                    await anyio.sleep(0.001)
            held = [stream for stream in streams if stream.holds_event()]
            if held:
                logger.warning("commit: %s still inside an event after %.1f s; "
                               "committing its effects so far without its offset (a "
                               "restart before the next commit would repeat them)",
                               ", ".join(map(repr, held)), limit)
            self.commit()
        finally:
            gate.set()

    def commit_soon(self) -> None:
        """Commit at the next chance, before the commit interval is up (a table's
        changed keys reached half its ``cache_size``)."""
        if self._commit_wanted is not None:
            self._commit_wanted.set()

    async def _flush_loop(self) -> None:
        """Write what agents and timers buffer within 10 ms of its first record (the
        fetcher writes it sooner when it finds nothing to read). The timer runs only
        while something is buffered, so an idle worker sleeps."""
        output = self.app.sender.buffer
        wanted = [anyio.Event()]
        output.on_first_record = lambda: wanted[0].set()
        try:
            while True:
                await wanted[0].wait()
                await anyio.sleep(self.app.conf.producer_linger_ms / 1000)
                wanted[0] = anyio.Event()
                if len(output):
                    output.flush()
        finally:
            output.on_first_record = None

    async def _watch_signals(self) -> None:
        try:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    logger.info("received %s: stopping", signal.Signals(signum).name)
                    self.stop()
                    return
        except (NotImplementedError, ValueError):  # not the main thread
            return

    async def _status_loop(self) -> None:
        assert self.status_interval
        last = None
        while True:
            await anyio.sleep(self.status_interval)
            numbers = self.status_numbers()
            if not self.status_on_terminal:
                # piped, systemd, docker: a heartbeat in the log, idle or not
                logger.info("status: %s", numbers)
            elif numbers != last:
                print(f"[{datetime.now():%H:%M:%S}] {numbers}", file=sys.stderr, flush=True)
            last = numbers

    def status_line(self) -> str:
        """``[HH:MM:SS] N events/s  processed N  lag N  tables name=size ...``."""
        return f"[{datetime.now():%H:%M:%S}] {self.status_numbers()}"

    def status_numbers(self) -> str:
        """The status line without its time."""
        app = self.app
        lag = self.total_lag()
        tables = " ".join(f"{t.name}={len(t)}" for t in app.tables.values())
        return (f"{app.monitor.events_per_second():,.0f} events/s"
                f"  processed {self.events_processed():,}"
                f"  lag {lag:,}" + (f"  tables {tables}" if tables else ""))

    def events_processed(self) -> int:
        """Events the agents took from their streams (an event two agents read counts
        twice)."""
        return sum(a.events_total for a in self.app.agents.values())

    def _log_summary(self) -> None:
        """What this run did: running time, events, committed offsets."""
        try:
            by_agent = ", ".join(f"@{name} {agent.events_total:,}"
                                 for name, agent in self.app.agents.items())
            logger.info("worker %s stopped after %.1f s: %s events processed (%s); "
                        "committed offsets: %s", self.app.conf.id,
                        time.monotonic() - self._started, f"{self.events_processed():,}",
                        by_agent or "no agents",
                        describe_offsets(self.committer.committed) or "none")
        except Exception:
            logger.exception("could not summarize the run")

    def total_lag(self) -> int:
        consumer = self.consumer
        if consumer is None:
            return 0
        lag = 0
        for tp in consumer.assignment():
            _start, end = self.app.broker.offsets(tp)
            lag += max(0, end - consumer.position(tp))
        return lag

    # -- commits and rebalances ---------------------------------------------------------
    def commit(self) -> None:
        """Write sends, flush tables, then commit the offsets agents are done with."""
        self.committer.commit()

    def on_partitions_assigned(self, tps: list[TopicPartition]) -> None:
        logger.info("partitions assigned: %s", describe_partitions(tps) or "none")
        for table in self.app.tables.values():
            table.on_partitions_assigned(tps)
        for table in self.app.tables.values():
            for callback in table.recover_callbacks():
                self._call_soon(callback, f"on_recover of table {table.name}")
        self._signal(self.app.on_partitions_assigned, set(tps))
        self._signal(self.app.on_rebalance_complete)

    def on_partitions_revoked(self, tps: list[TopicPartition]) -> None:
        logger.info("partitions revoked: %s", describe_partitions(tps) or "none")
        self._give_up(tps, lost=False)

    def on_partitions_lost(self, tps: list[TopicPartition]) -> None:
        """The group removed this worker (it did not poll within session_timeout: a
        pause, a blocked event loop): its partitions are another's already, so what
        it did since its last commit is dropped, not committed (decision 161)."""
        logger.warning("partitions lost: %s (this worker was out of its group for "
                       "longer than session_timeout=%ss); what it did since its last "
                       "commit is dropped and their new owner does it again",
                       describe_partitions(tps) or "none", self.app.conf.session_timeout)
        self._give_up(tps, lost=True)

    def _give_up(self, tps: list[TopicPartition], lost: bool) -> None:
        revoked = set(tps)
        app = self.app
        assigned = self.consumer.assignment() if self.consumer is not None else set()
        if not self._closing:
            if lost:
                self.committer.abandon()
            else:
                self.committer.commit(revoking=revoked)
            for stream in app.fetcher.streams():
                stream.drop_partitions(revoked)
            self.committer.forget(revoked)
        self._signal(app.on_partitions_revoked, revoked)
        for table in app.tables.values():
            table.on_partitions_revoked(tps, assigned)


def describe_partitions(tps: Sequence[TopicPartition] | set[TopicPartition]) -> str:
    """``topic [0, 1, 2]; other [0]``, topics in name order."""
    by_topic: dict[str, list[int]] = {}
    for tp in tps:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return "; ".join(f"{topic} {sorted(parts)}" for topic, parts in sorted(by_topic.items()))


def describe_offsets(offsets: dict[TopicPartition, int]) -> str:
    """``topic[0]=12 topic[1]=7``, in topic and partition order."""
    return " ".join(f"{tp.topic}[{tp.partition}]={offset}"
                    for tp, offset in sorted(offsets.items()))


def _nothing() -> None:
    return None


async def _awaited(awaitable: Awaitable[Any]) -> None:
    await awaitable


async def _logged(awaitable: Awaitable[Any], what: str) -> None:
    try:
        await awaitable
    except Exception:
        logger.exception("%s raised", what)
