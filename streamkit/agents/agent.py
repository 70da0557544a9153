"""``@app.agent``: an async function over a stream, supervised by the worker.

An agent is a coroutine function ``async def f(stream)`` that iterates its stream, or an
async generator whose yielded values go to its sinks. The worker runs ``concurrency``
instances, each over its own share of the partitions (partition % concurrency), so
events of one partition stay in order. An agent that raises is logged with its
traceback and restarted; the event it raised on counts as done (otherwise a poison
event would crash it forever) — see docs/decisions/001-agent-crash.md. An agent that
raises ``ImproperlyConfigured`` (a set-up that cannot work, like a ``group_by`` name
that cannot be part of a topic name) is not restarted: it would fail the same way
every time, so the worker stops with that error.

Request-reply (``ask``, ``map``, ``join``): a value the agent yields while working on a
request goes back to the asker as the reply (``streamkit.agents.replies``).
"""
from __future__ import annotations

import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any

import anyio

from streamkit.agents.replies import (ReplyPromise, ReplyReader, reply_address,
                                      reply_record, request_headers)
from streamkit.errors import ImproperlyConfigured
from streamkit.streams.channel import Channel
from streamkit.streams.context import StreamContext
from streamkit.streams.event import current_stream
from streamkit.streams.fetcher import Fetcher
from streamkit.streams.stream import Stream
from streamkit.topics import PendingSend, Topic
from streamkit.types import RecordMetadata

if TYPE_CHECKING:
    from streamkit.agents.testing import AgentTestContext

logger = logging.getLogger("streamkit.agents")

AgentFun = Callable[[Stream], Any]


class Agent:
    """A registered agent. ``await agent.send(value=..., key=...)`` sends to its topic."""

    def __init__(self, fun: AgentFun, channel: Topic, *, name: str, context: StreamContext,
                 fetcher: Fetcher,
                 test_context: Callable[[Agent], AgentTestContext] | None = None,
                 concurrency: int = 1, sink: list[Any] | None = None,
                 help: str | None = None, replies: ReplyReader | None = None,
                 view: Callable[[Stream], Any] | None = None) -> None:
        """``context`` makes its streams, ``fetcher`` feeds them (and counts their
        events); ``test_context`` builds ``agent.test_context()``; ``replies`` reads
        the replies to this app's asks; ``view`` makes what the function iterates of
        each stream (a stream-stream join's pairs), else the stream itself."""
        self._context = context
        self._view = view
        self._replies = replies
        self._fetcher = fetcher
        self._test_context = test_context
        #: called with every value the agent yields (``test_context()`` collects them)
        self.result_listeners: list[Callable[[Any], None]] = []
        self.fun = fun
        self.channel = channel
        self.name = name
        self.concurrency = concurrency
        self.sinks = list(sink or [])
        self.help = help or inspect.getdoc(fun) or ""
        self.streams: list[Stream] = []
        self.errors = 0
        self.restarts = 0
        self.started_at: float | None = None

    def __repr__(self) -> str:
        return f"<Agent @{self.name} {self.channel.topics}>"

    def __call__(self, stream: Any) -> Any:
        """Call the agent's function directly (as Faust allows, for tests)."""
        return self.fun(stream)

    @property
    def events_total(self) -> int:
        """Events this agent has finished (after any group_by, counted once)."""
        return sum(s.events_total for s in self._fetcher.streams()
                   if s.agent is self and not s.consumed_by_repartition)

    # -- sending ---------------------------------------------------------------------
    async def send(self, *, value: Any = None, key: Any = None, headers: Any = None,
                   partition: int | None = None, timestamp: float | None = None,
                   reply_to: Any = None, correlation_id: str | None = None,
                   key_serializer: Any = None, value_serializer: Any = None,
                   callback: Callable[..., Any] | None = None, force: bool = False,
                   schema: Any = None) -> RecordMetadata:
        """Send a value to this agent's topic; returns its metadata. With
        ``reply_to`` (a topic, its name or an agent) it is a request: what the agent
        yields for it is sent there (see ``ask``). Faust's other options as
        ``Topic.send``."""
        if reply_to is not None:
            headers = request_headers(headers, _topic_name(reply_to),
                                      correlation_id or uuid.uuid4().hex)
        return await self.channel.send(key=key, value=value, headers=headers,
                                       partition=partition, timestamp=timestamp,
                                       key_serializer=key_serializer,
                                       value_serializer=value_serializer,
                                       callback=callback, force=force, schema=schema)

    async def cast(self, value: Any = None, *, key: Any = None,
                   partition: int | None = None, timestamp: float | None = None,
                   headers: Any = None) -> None:
        """Send ``value`` to the agent without waiting for a reply (Faust's
        ``cast``)."""
        await self.channel.send(key=key, value=value, headers=headers,
                                partition=partition, timestamp=timestamp)

    async def ask(self, value: Any = None, *, key: Any = None,
                  partition: int | None = None, timestamp: float | None = None,
                  headers: Any = None, reply_to: Any = None,
                  correlation_id: str | None = None) -> Any:
        """Send ``value`` to the agent and return what it yields for it: the reply
        comes on this app's reply topic (or ``reply_to``). It waits for as long as
        it takes, as Faust's does: bound it with ``anyio.fail_after`` (or
        ``asyncio.timeout``)."""
        promise = await self.ask_nowait(value, key=key, partition=partition,
                                        timestamp=timestamp, headers=headers,
                                        reply_to=reply_to, correlation_id=correlation_id)
        return await promise

    async def ask_nowait(self, value: Any = None, *, key: Any = None,
                         partition: int | None = None, timestamp: float | None = None,
                         headers: Any = None, reply_to: Any = None,
                         correlation_id: str | None = None) -> ReplyPromise:
        """Send a request and return at once: ``await`` the promise for the reply."""
        reader = self._reader()
        topic = _topic_name(reply_to) if reply_to is not None else reader.topic
        correlation_id = correlation_id or uuid.uuid4().hex
        reader.expect(correlation_id, topic)
        try:
            await self.channel.send(key=key, value=value, partition=partition,
                                    timestamp=timestamp,
                                    headers=request_headers(headers, topic, correlation_id))
        except BaseException:
            reader.forget([correlation_id])
            raise
        return ReplyPromise(reader, topic, correlation_id)

    async def map(self, values: Iterable[Any] | AsyncIterable[Any], key: Any = None,
                  reply_to: Any = None) -> AsyncIterator[Any]:
        """Ask the agent about each of ``values`` (all with ``key``); yield the
        replies as they come (Faust's ``map``; ``join`` keeps the order)."""
        async for _, reply in self._ask_all(_with_key(key, values), reply_to):
            yield reply

    async def kvmap(self, items: Iterable[tuple[Any, Any]] | AsyncIterable[tuple[Any, Any]],
                    reply_to: Any = None) -> AsyncIterator[Any]:
        """``map`` over ``(key, value)`` pairs."""
        async for _, reply in self._ask_all(items, reply_to):
            yield reply

    async def join(self, values: Iterable[Any] | AsyncIterable[Any], key: Any = None,
                   reply_to: Any = None) -> list[Any]:
        """Ask the agent about each of ``values``; the replies, in the order of the
        values, once all came."""
        return await self.kvjoin(_with_key(key, values), reply_to=reply_to)

    async def kvjoin(self, items: Iterable[tuple[Any, Any]] | AsyncIterable[tuple[Any, Any]],
                     reply_to: Any = None) -> list[Any]:
        """``join`` over ``(key, value)`` pairs."""
        replies = {i: reply async for i, reply in self._ask_all(items, reply_to)}
        return [replies[i] for i in range(len(replies))]

    async def _ask_all(self, items: Any, reply_to: Any) -> AsyncIterator[tuple[int, Any]]:
        """Send every request, then yield ``(index, reply)`` as the replies come."""
        sent: list[str] = []
        try:
            async for key, value in _aiter(items):
                promise = await self.ask_nowait(value, key=key, reply_to=reply_to)
                sent.append(promise.correlation_id)
        except BaseException:
            self._reader().forget(sent)
            raise
        index = {correlation_id: i for i, correlation_id in enumerate(sent)}
        async for correlation_id, reply in self._reader().as_they_come(sent):
            yield index[correlation_id], reply

    def _reader(self) -> ReplyReader:
        if self._replies is None:
            raise ImproperlyConfigured(f"{self!r} was not declared by an app: it cannot "
                                       "ask")
        return self._replies

    def send_soon(self, *, value: Any = None, key: Any = None, headers: Any = None,
                  partition: int | None = None) -> PendingSend:
        return self.channel.send_soon(key=key, value=value, headers=headers,
                                      partition=partition)

    # -- running -----------------------------------------------------------------------
    def create_streams(self) -> list[Stream]:
        """The agent's stream instances, registered with the app's fetcher."""
        self.streams = [self._context.add_stream(self.channel, i, self)
                        for i in range(self.concurrency)]
        return self.streams

    async def run(self, stream: Stream) -> None:
        """Run one instance over ``stream``, restarting it when it raises."""
        self.started_at = self.started_at or time.time()
        backoff = 0.05
        while True:
            try:
                await self._run_once(stream)
                return
            except ImproperlyConfigured:
                raise
            except Exception:
                self.errors += 1
                # the stream the agent was iterating (after group_by, not `stream`)
                stream_in_hand = current_stream.get() or stream
                event = stream_in_hand.current_event()
                where = (f" on {event.message.topic}[{event.message.partition}]"
                         f"@{event.message.offset}" if event is not None else "")
                logger.exception("agent @%s crashed%s; restarting it", self.name, where)
                stream_in_hand.skip_in_flight()
                if stream.stopping or stream_in_hand.stopping:
                    return
                self.restarts += 1
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _run_once(self, stream: Stream) -> None:
        result = self.fun(stream if self._view is None else self._view(stream))
        if inspect.isasyncgen(result):
            async for value in result:
                self._reply(stream, value)
                await self._to_sinks(value)
        else:
            await result

    def _reply(self, stream: Stream, value: Any) -> None:
        """Send ``value`` to the asker if the event in hand is a request."""
        in_hand = current_stream.get() or stream
        batch, i = in_hand.batch, in_hand.cursor
        if batch is None or i >= len(batch.messages):
            return
        # no Event made: most agents that yield feed sinks, and this runs per value
        address = reply_address(batch.messages[i].headers)
        if address is not None:
            reply_to, correlation_id = address
            self._context.sender.buffer.append(
                reply_to, reply_record(batch.keys[i], value, correlation_id),
                want_result=False)

    async def _to_sinks(self, value: Any) -> None:
        for sink in self.sinks:
            if isinstance(sink, Topic):
                sink.send_soon(value=value)
            elif isinstance(sink, Agent):
                sink.channel.send_soon(value=value)
            else:
                outcome = sink(value)
                if inspect.isawaitable(outcome):
                    await outcome
        for listener in self.result_listeners:
            listener(value)

    def test_context(self) -> AgentTestContext:
        """Run events through this agent in process: ``async with
        agent.test_context() as ctx: await ctx.put(value)``. Tables use memory stores
        and no broker is involved; ``ctx.results`` holds the values the agent yielded."""
        if self._test_context is None:
            raise ImproperlyConfigured(f"{self!r} was not declared by an app")
        return self._test_context(self)


def _topic_name(channel: Any) -> str:
    """The topic name of a topic, an agent or a name."""
    if isinstance(channel, str):
        return channel
    if isinstance(channel, Agent):
        channel = channel.channel
    if isinstance(channel, Channel):
        raise TypeError(f"reply_to={channel!r}: a channel is not a topic; replies go "
                        "to a topic")
    if isinstance(channel, Topic):
        return channel.name
    raise TypeError(f"reply_to={channel!r}: expected a topic, its name or an agent")


async def _with_key(key: Any, values: Iterable[Any] | AsyncIterable[Any]
                    ) -> AsyncIterator[tuple[Any, Any]]:
    async for value in _aiter(values):
        yield key, value


async def _aiter(items: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
