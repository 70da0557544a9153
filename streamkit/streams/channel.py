"""``app.channel()`` and ``app.stream(iterable)``: streams that no topic feeds.

A ``Channel`` is Faust's in-memory channel: ``await channel.send(value=...)`` hands the
value straight to the streams of the agents consuming it (``@app.agent(channel)``), in
this process. Nothing is written anywhere: a channel has no partitions, no offsets to
commit, and what is in it is lost when the process stops or crashes. Use a topic for
anything that must survive (decision 021). Keys and values are encoded by the channel's
serializers when sent, as a topic's are, so ``event.forward()``, ``group_by`` and
``through`` work on a channel's events too.

``SourceReader`` is what a stream over a plain iterable reads (``app.stream([1, 2])``).
"""
from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from streamkit.streams.stream import Batch, Stream
from streamkit.topics import (DECLARED, Declared, PendingSend, SentMessage, Topic, call_back,
                              refuse_schema)
from streamkit.types import CREATE_TIME, Message, OutgoingRecord, RecordMetadata, TopicPartition


class _Group:
    """The streams of one consumer of a channel (an agent's ``concurrency`` instances,
    or one plain stream): each value goes to one of them."""

    __slots__ = ("agent", "streams")

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.streams: list[Stream] = []


class Channel(Topic):
    """An in-memory channel (see the module docstring). ``maxsize``: a ``send`` waits
    while a consumer has that many values not yet taken (Faust's
    ``stream_buffer_maxsize``, 4096)."""

    def __init__(self, name: str, *, maxsize: int | None = 4096, **options: Any) -> None:
        super().__init__(name, **options)
        self.maxsize = maxsize
        self._groups: list[_Group] = []
        self._next_offset = 0
        #: sent before anyone consumed the channel: given to the first consumers
        self._backlog: list[Batch] = []

    def __repr__(self) -> str:
        return f"<Channel {self.name}>"

    # -- consumers -----------------------------------------------------------------
    def subscribe(self, stream: Stream) -> None:
        """Give ``stream`` the channel's values from now on (and those sent before any
        consumer came). Instances of one agent share the values."""
        group = next((g for g in self._groups
                      if stream.agent is not None and g.agent is stream.agent), None)
        if group is None:
            group = _Group(stream.agent)
            self._groups.append(group)
            for batch in self._backlog:
                stream.deliver(batch)
        group.streams.append(stream)

    def declare(self) -> Declared:
        """Nothing to create: a channel lives in memory (awaitable, as a topic's)."""
        return DECLARED

    def maybe_declare(self) -> Declared:
        """Nothing to create (awaitable, as a topic's)."""
        return DECLARED

    def _declare_once(self) -> None:
        pass

    def empty(self) -> bool:
        """Whether no consumer has a value waiting."""
        return not self._backlog and all(s.buffered() == 0 for g in self._groups
                                         for s in g.streams)

    # -- sending ---------------------------------------------------------------------
    async def send(self, *, key: Any = None, value: Any = None, headers: Any = None,
                   timestamp: float | None = None, partition: int | None = None,
                   key_serializer: Any = None, value_serializer: Any = None,
                   callback: Callable[[SentMessage], Any] | None = None,
                   force: bool = False, schema: Any = None) -> RecordMetadata:
        """Hand one value to the channel's consumers (waiting while one of them has
        ``maxsize`` values not taken yet). Faust's options as ``Topic.send``."""
        refuse_schema(schema)
        if self.maxsize is not None:
            for group in self._groups:
                for stream in group.streams:
                    await stream.wait_for_room(self.maxsize)
        metadata = self._put(self.prepare(key, value, headers, timestamp, partition,
                                          key_serializer=key_serializer,
                                          value_serializer=value_serializer), key, value)
        await call_back(callback, metadata)
        return metadata

    async def put(self, value: Any = None, *, key: Any = None) -> RecordMetadata:
        """Faust's ``channel.put(value)``: ``send(value=value, key=key)``."""
        return await self.send(key=key, value=value)

    def send_soon(self, *, key: Any = None, value: Any = None, headers: Any = None,
                  timestamp: float | None = None, partition: int | None = None,
                  key_serializer: Any = None, value_serializer: Any = None
                  ) -> PendingSend:
        """Hand one value to the consumers now (no waiting for room)."""
        metadata = self._put(self.prepare(key, value, headers, timestamp, partition,
                                          key_serializer=key_serializer,
                                          value_serializer=value_serializer), key, value)
        return _sent(self._sender.buffer, metadata)

    def send_raw_soon(self, record: OutgoingRecord) -> PendingSend:
        """Hand an encoded record (``event.forward(channel)``) to the consumers."""
        key = self.key_serde.loads(record.key) if record.key is not None else None
        value = self.value_serde.loads(record.value) if record.value is not None else None
        return _sent(self._sender.buffer, self._put(record, key, value))

    def _put(self, record: OutgoingRecord, key: Any, value: Any) -> RecordMetadata:
        offset = self._next_offset
        self._next_offset += 1
        partition = record.partition or 0
        timestamp = (record.timestamp if record.timestamp is not None
                     else int(time.time() * 1000))
        message = Message(self.name, partition, offset, timestamp, CREATE_TIME,
                          record.key, record.value, record.headers or [])
        batch = Batch(TopicPartition(self.name, partition), [message], [key], [value],
                      offset + 1)
        if not self._groups:
            self._backlog.append(batch)
        else:
            self._backlog.clear()
            for group in self._groups:
                group.streams[offset % len(group.streams)].deliver(batch)
        return RecordMetadata(self.name, partition, offset, timestamp)


def _sent(buffer: Any, metadata: RecordMetadata) -> PendingSend:
    pending = PendingSend(buffer)
    pending.resolve(metadata)
    return pending


class SourceReader:
    """Batches of a plain iterable (up to ``SOURCE_BATCH`` values at a time) or an
    async iterable (one value at a time: its next one may take long to come), for a
    stream made by ``app.stream(iterable)``; the stream ends with the iterable."""

    SOURCE_BATCH = 1000

    def __init__(self, name: str, source: Any) -> None:
        self._tp = TopicPartition(name, 0)
        self._offset = 0
        self._async: AsyncIterator[Any] | None = None
        self._sync: Iterator[Any] | None = None
        if hasattr(source, "__aiter__"):
            self._async = source.__aiter__()
        else:
            self._sync = iter(source)

    async def next_batch(self) -> Batch | None:
        values: list[Any] = []
        if self._async is not None:
            try:
                values.append(await self._async.__anext__())
            except StopAsyncIteration:
                return None
        else:
            assert self._sync is not None
            for value in self._sync:
                values.append(value)
                if len(values) >= self.SOURCE_BATCH:
                    break
            if not values:
                return None
        now = int(time.time() * 1000)
        start = self._offset
        self._offset += len(values)
        messages = [Message(self._tp.topic, 0, start + i, now, CREATE_TIME, None, None, [])
                    for i in range(len(values))]
        return Batch(self._tp, messages, [None] * len(values), values, self._offset)


