"""Request-reply with agents: ``agent.ask()``, ``map()``, ``join()`` and the replies.

A request is a record on the agent's topic like any other, with two headers: where to
reply (``Faust-Ag-ReplyTo``, a topic) and the request's correlation id
(``Faust-Ag-CorrelationId``) — Faust's header names and its default form
(``use_reply_headers=True``), so the agent's topic keeps its value type. Each value an
agent yields while working on a request goes back to that topic as a reply: a JSON
object ``{"key", "value", "correlation_id"}`` (Faust's ``ReqRepResponse``) with the
correlation id also in a header, so an asker reads it without decoding replies meant
for others.

An app replies to its asks on its own reply topic, ``<app id>-reply-<random>``: one
partition, deleted after ``REPLY_EXPIRES`` seconds, created (and recorded for
``streamkit reset``) at the first ask. ``ReplyReader`` reads it without a consumer group
and without a task of its own: whichever ask is waiting reads for all of them, one at a
time, so asking works in a worker, in a timer, in a web view or in a plain script
(decision 023).
"""
from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Generator, Iterable
from typing import Any

import anyio

from streamkit.models import Record
from streamkit.serializers import codecs
from streamkit.transport import Broker
from streamkit.types import Headers, Message, OutgoingRecord, TopicPartition

REPLY_TO = "Faust-Ag-ReplyTo"
CORRELATION_ID = "Faust-Ag-CorrelationId"
#: the namespace of a Record an agent replied with (the asker decodes into its class)
REPLY_TYPE = "streamkit-reply-type"
#: seconds a reply topic keeps replies (Faust's ``reply_expires``: one day)
REPLY_EXPIRES = 86_400.0
#: longest wait between two reads of the reply topic while nothing comes
MAX_IDLE = 0.02


def request_headers(headers: Any, reply_to: str, correlation_id: str) -> Headers:
    """``headers`` (a dict or pairs, or None) with the two request headers added."""
    items = list((headers.items() if isinstance(headers, dict) else headers) or [])
    pairs: Headers = [(str(k), v if isinstance(v, bytes) else str(v).encode())
                      for k, v in items]
    pairs += [(REPLY_TO, reply_to.encode()), (CORRELATION_ID, correlation_id.encode())]
    return pairs


def reply_address(headers: Headers | None) -> tuple[str, str] | None:
    """``(reply topic, correlation id)`` of a request's headers, None if not one."""
    if not headers:
        return None
    reply_to = correlation_id = None
    for name, value in headers:
        if name == REPLY_TO and value:
            reply_to = value.decode()
        elif name == CORRELATION_ID and value:
            correlation_id = value.decode()
    if reply_to is None or correlation_id is None:
        return None
    return reply_to, correlation_id


def reply_record(key: Any, value: Any, correlation_id: str) -> OutgoingRecord:
    """The reply of a request: Faust's ``ReqRepResponse`` in JSON."""
    body = {"key": key, "value": value, "correlation_id": correlation_id,
            "__faust": {"ns": "@ReqRepResponse"}}
    headers: Headers = [(CORRELATION_ID, correlation_id.encode())]
    if isinstance(value, Record):
        headers.append((REPLY_TYPE, value._options.namespace.encode()))
    return OutgoingRecord(None, codecs.get("json").dumps(body), headers, None, None)


def _record_class(namespace: str) -> type[Record] | None:
    """The Record class of ``namespace`` among those this process defined."""
    todo: list[type[Record]] = [Record]
    while todo:
        cls = todo.pop()
        if getattr(cls, "_options", None) is not None and \
                cls._options.namespace == namespace:
            return cls
        todo.extend(cls.__subclasses__())
    return None


def _reply_value(message: Message) -> Any:
    body = json.loads(message.value or b"null")
    value = body.get("value") if isinstance(body, dict) else None
    for name, raw in message.headers:
        if name == REPLY_TYPE and raw and isinstance(value, dict):
            cls = _record_class(raw.decode())
            if cls is not None:
                return cls.from_data(value)
    return value


class _Slot:
    __slots__ = ("done", "value")

    def __init__(self) -> None:
        self.done = False
        self.value: Any = None


class ReplyReader:
    """The replies of one app's asks (see the module docstring). ``broker`` gives the
    app's broker; ``create_topic(name)`` creates (and records) the reply topic."""

    def __init__(self, topic: str, broker: Callable[[], Broker],
                 create_topic: Callable[[str], None]) -> None:
        self.topic = topic
        self._broker = broker
        self._create_topic = create_topic
        #: per reply topic read, the next offset of each partition
        self._positions: dict[str, dict[TopicPartition, int]] = {}
        self._slots: dict[str, _Slot] = {}
        self._lock: anyio.Lock | None = None

    def expect(self, correlation_id: str, reply_to: str | None = None) -> None:
        """Get ready for the reply to ``correlation_id`` on ``reply_to`` (this app's
        reply topic by default): call before the request is sent, so no reply is
        missed."""
        topic = reply_to or self.topic
        if topic not in self._positions:
            broker = self._broker()
            if broker.partition_count(topic) is None:
                self._create_topic(topic)
            count = broker.partition_count(topic) or 1
            self._positions[topic] = {
                TopicPartition(topic, p): broker.offsets(TopicPartition(topic, p))[1]
                for p in range(count)}
        self._slots[correlation_id] = _Slot()

    def forget(self, correlation_ids: Iterable[str]) -> None:
        """Stop waiting for these replies (a late one is dropped)."""
        for correlation_id in correlation_ids:
            self._slots.pop(correlation_id, None)

    async def wait(self, correlation_id: str) -> Any:
        """The reply to ``correlation_id`` (``expect``-ed before), once it came
        (cancelled: no longer awaited)."""
        slot = self._slots[correlation_id]
        try:
            await self._read_until(lambda: slot.done)
        finally:
            self._slots.pop(correlation_id, None)
        return slot.value

    async def as_they_come(self, correlation_ids: list[str]
                           ) -> AsyncIterator[tuple[str, Any]]:
        """``(correlation id, reply)`` of each of ``correlation_ids``, as they come."""
        waiting = list(correlation_ids)
        try:
            while waiting:
                await self._read_until(lambda: any(self._slots[c].done for c in waiting))
                for correlation_id in [c for c in waiting if self._slots[c].done]:
                    waiting.remove(correlation_id)
                    yield correlation_id, self._slots.pop(correlation_id).value
        finally:
            self.forget(waiting)

    async def _read_until(self, done: Callable[[], bool]) -> None:
        # one reader at a time; the others wait for the lock and find their reply
        # delivered when they get it
        if self._lock is None:
            self._lock = anyio.Lock()
        idle = 0.001
        while not done():
            async with self._lock:
                if done():
                    return
                if self._read():
                    idle = 0.001
                else:
                    await anyio.sleep(idle)
                    idle = min(idle * 2, MAX_IDLE)

    def _read(self) -> int:
        """Read what came on the reply topics; deliver the replies awaited here."""
        broker = self._broker()
        read = 0
        for positions in self._positions.values():
            for tp, offset in positions.items():
                messages = broker.fetch(tp, offset, 1000)
                if not messages:
                    continue
                positions[tp] = messages[-1].offset + 1
                read += len(messages)
                for message in messages:
                    self._deliver(message)
        return read

    def _deliver(self, message: Message) -> None:
        for name, raw in message.headers:
            if name == CORRELATION_ID and raw:
                slot = self._slots.get(raw.decode())
                if slot is not None and not slot.done:
                    slot.value = _reply_value(message)
                    slot.done = True
                return


class ReplyPromise:
    """Faust's ``ReplyPromise``: ``await`` it for the reply (``agent.ask_nowait``)."""

    def __init__(self, reader: ReplyReader, reply_to: str, correlation_id: str) -> None:
        self.reply_to = reply_to
        self.correlation_id = correlation_id
        self._reader = reader

    def __await__(self) -> Generator[Any, None, Any]:
        return self._reader.wait(self.correlation_id).__await__()
