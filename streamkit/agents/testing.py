"""``agent.test_context()``: unit-test an agent in process, with no worker.

Events put into the context go straight into the agent's stream (no broker, no
encoding round trip of the input); tables use memory stores and keep no changelog;
records the agent sends or forwards land in a private ``memory://`` broker that
``ctx.sent(topic)`` reads back. ``put`` returns once the agent is done with the event,
that is once it asks for the next one.
"""
from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any

import anyio

from streamkit.streams.event import Event
from streamkit.streams.stream import Batch, Stream
from streamkit.types import CREATE_TIME, Message, TopicPartition

if TYPE_CHECKING:
    from streamkit.agents.agent import Agent

_contexts = itertools.count(1)


class AgentTestContext:
    """See the module docstring. ``results`` holds what the agent yielded."""

    def __init__(self, agent: Agent, timeout: float = 10.0) -> None:
        self.agent = agent
        self.app = agent.app
        self.timeout = timeout
        self.results: list[Any] = []
        self._offsets: dict[int, int] = {}
        self._stream: Stream | None = None
        self._task_group: Any = None

    async def __aenter__(self) -> AgentTestContext:
        app = self.app
        app.enter_test_context(f"memory://{app.conf.id}-test-{next(_contexts)}", self)
        self._stream = Stream(app, self.agent.channel, agent=self.agent)
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._finished = anyio.Event()
        self._task_group.start_soon(self._run_agent)
        return self

    async def _run_agent(self) -> None:
        try:
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
        self.app.leave_test_context()

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
                          record.key, record.value, record.headers)
        done = anyio.Event()
        tp = TopicPartition(channel.name, partition)
        self._stream.deliver(Batch(tp, [message], [key], [value], offset + 1, done))
        with anyio.fail_after(self.timeout):
            await done.wait()
        self.app.after_test_event()
        return Event(self.app, key, value, message.headers, message)

    def sent(self, topic: Any) -> list[Message]:
        """Every record sent to ``topic`` (a Topic, an Agent or a name) so far."""
        self.app.output.flush()
        name = topic if isinstance(topic, str) else (
            getattr(topic, "name", None) if not hasattr(topic, "channel")
            else topic.channel.name)
        broker = self.app.broker
        count = broker.partition_count(name)
        if count is None:
            return []
        out: list[Message] = []
        for partition in range(count):
            out.extend(broker.fetch(TopicPartition(name, partition), 0, 1_000_000))
        return out
