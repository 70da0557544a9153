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
"""
from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from streamkit.errors import ImproperlyConfigured
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
                 help: str | None = None) -> None:
        """``context`` makes its streams, ``fetcher`` feeds them (and counts their
        events); ``test_context`` builds ``agent.test_context()``."""
        self._context = context
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
                   partition: int | None = None, timestamp: float | None = None
                   ) -> RecordMetadata:
        """Send a value to this agent's topic; returns its metadata."""
        return await self.channel.send(key=key, value=value, headers=headers,
                                       partition=partition, timestamp=timestamp)

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
        result = self.fun(stream)
        if inspect.isasyncgen(result):
            async for value in result:
                await self._to_sinks(value)
        else:
            await result

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
