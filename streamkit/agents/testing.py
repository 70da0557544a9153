"""``agent.test_context()``: unit-test an agent in process, with no worker.

Events put into the context go straight into the agent's stream (no broker, no
encoding round trip of the input). For its duration the app's sender writes to a
private ``memory://`` broker (which ``ctx.sent(topic)`` reads back), the app's tables
work on memory stores over that broker, and ``group_by``/``through`` keep each event in
place (with its new key) instead of moving it through a topic: all of it through the
same injection points a worker uses, so the agent's own code runs unchanged. ``put``
returns once the agent is done with the event, that is once it asks for the next one.
"""
from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio

from streamkit.errors import ImproperlyConfigured
from streamkit.streams.context import StreamContext
from streamkit.streams.event import Event
from streamkit.streams.repartition import key_function
from streamkit.streams.operators import TICK
from streamkit.streams.stream import Batch, DerivedStream, Stream, _Operators
from streamkit.tables.context import TableContext
from streamkit.tables.stores import open_store
from streamkit.tables.table import Table
from streamkit.topics import Topic
from streamkit.transport import Broker, connect
from streamkit.types import CREATE_TIME, Message, OutgoingRecord, RecordMetadata, TopicPartition

if TYPE_CHECKING:
    from streamkit.agents.agent import Agent

_contexts = itertools.count(1)


class InPlace:
    """``group_by``/``through`` inside a test context: no topic in between; the event
    goes on in place (re-keyed by ``group_by``; written to the topic by ``through``, so
    ``ctx.sent(topic)`` shows it)."""

    def group_by(self, parent: _Operators, key: Any, *, name: str | None,
                 partitions: int | None) -> DerivedStream:
        pick_key, _ = key_function(key)
        return DerivedStream(parent.root, lambda: _rekey_in_place(parent, pick_key))

    def through(self, parent: _Operators, channel: Topic) -> DerivedStream:
        return DerivedStream(parent.root, lambda: _forward_in_place(parent, channel))


async def _forward_in_place(parent: _Operators, topic: Topic) -> AsyncIterator[Any]:
    root = parent.root
    async for value in parent:
        if value is not TICK:
            event = root.current_event()
            if event is not None:
                m = event.message
                topic.send_raw_soon(OutgoingRecord(m.key, m.value, m.headers,
                                                   m.timestamp, None))
        yield value


async def _rekey_in_place(parent: _Operators, pick_key: Callable[[Any], Any]
                          ) -> AsyncIterator[Any]:
    root = parent.root
    async for value in parent:
        if value is not TICK:
            root.rekey(pick_key(value))
        yield value


def _no_tasks(name: str, fun: Any, *args: Any) -> None:
    raise ImproperlyConfigured(f"{name}: not available inside test_context()")


class AgentTestContext:
    """See the module docstring. ``results`` holds what the agent yielded."""

    def __init__(self, agent: Agent, *, stream_context: StreamContext,
                 table_context: TableContext, tables: Iterable[Table],
                 timeout: float = 10.0) -> None:
        """``stream_context`` and ``table_context`` are the app's, which the test
        context stands in for; ``tables`` are the app's tables."""
        self.agent = agent
        self.timeout = timeout
        self.results: list[Any] = []
        self._app_streams = stream_context
        self._app_tables = table_context
        self._tables: Sequence[Table] = list(tables)
        self._offsets: dict[int, int] = {}
        self._stream: Stream | None = None
        self._broker: Broker | None = None
        self._routed_back: Any = None
        self._task_group: Any = None
        self._finished = anyio.Event()

    def _enter(self) -> Stream:
        """Swap in the memory broker, memory stores and in-place repartitioning."""
        app_id = self._app_streams.app_id
        broker = self._broker = connect(
            f"memory://{app_id}-test-{next(_contexts)}",
            default_partitions=self._app_tables.default_partitions)
        sender = self._app_streams.sender

        def produce(topic: str, records: Sequence[OutgoingRecord], acks: Any
                    ) -> Sequence[RecordMetadata]:
            return broker.produce(topic, records, acks=1 if acks is None else acks)

        def create(name: str, partitions: int | None, config: dict[str, str],
                   replicas: int) -> None:
            broker.create_topic(name, partitions=partitions, config=config, exist_ok=True)

        self._routed_back = sender.route(produce, create)
        tables = replace(self._app_tables, broker=lambda: broker, store_url="memory://",
                         open_store=lambda url, name: open_store("memory://", None, name),
                         spawn=_no_tasks)
        for table in self._tables:
            table.bind(tables)
        self.agent.result_listeners.append(self.results.append)
        streams = replace(self._app_streams, spawn=_no_tasks, repartition=InPlace())
        return Stream(self.agent.channel, context=streams, agent=self.agent)

    def _leave(self) -> None:
        """Route the sends back to the app. The tables stay bound to this context, so
        the test can read what the agent wrote; a worker binds them back when it opens
        them."""
        self.agent.result_listeners.remove(self.results.append)
        self._app_streams.sender.route(*self._routed_back)

    async def __aenter__(self) -> AgentTestContext:
        self._stream = self._enter()
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._run_agent)
        return self

    async def _run_agent(self) -> None:
        try:
            assert self._stream is not None
            await self.agent.run(self._stream)
        finally:
            self._finished.set()

    async def __aexit__(self, *exc_info: Any) -> None:
        assert self._stream is not None
        self._stream.stop()
        with anyio.move_on_after(self.timeout):
            await self._finished.wait()
        self._task_group.cancel_scope.cancel()
        await self._task_group.__aexit__(None, None, None)
        self._leave()

    async def put(self, value: Any = None, key: Any = None, *,
                  timestamp: float | None = None, headers: Any = None,
                  partition: int = 0) -> Event:
        """Give the agent one event and wait until it is done with it."""
        assert self._stream is not None, "use put() inside `async with`"
        channel = self.agent.channel
        offset = self._offsets.get(partition, 0)
        self._offsets[partition] = offset + 1
        ts_ms = int((time.time() if timestamp is None else timestamp) * 1000)
        record = channel.prepare(key, value, headers)
        message = Message(channel.name, partition, offset, ts_ms, CREATE_TIME,
                          record.key, record.value, record.headers or [])
        done = anyio.Event()
        tp = TopicPartition(channel.name, partition)
        self._stream.deliver(Batch(tp, [message], [key], [value], offset + 1, done))
        with anyio.fail_after(self.timeout):
            await done.wait()
        for table in self._tables:
            if table.window is not None:
                table.window.close_due_windows()
        return Event(key, value, message.headers, message)

    def sent(self, topic: Any) -> list[Message]:
        """Every record sent to ``topic`` (a Topic, an Agent or a name) so far."""
        self._app_streams.sender.buffer.flush()
        name: str = topic if isinstance(topic, str) else (
            topic.channel.name if hasattr(topic, "channel") else topic.name)
        broker = self._broker
        assert broker is not None, "use sent() inside `async with`"
        count = broker.partition_count(name)
        if count is None:
            return []
        out: list[Message] = []
        for partition in range(count):
            out.extend(broker.fetch(TopicPartition(name, partition), 0, 1_000_000))
        return out
