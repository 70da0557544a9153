"""``Event``: one message as an agent sees it, and ``current_event()``."""
from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from streamkit.types import Headers, Message, OutgoingRecord

from streamkit.topics import (PendingSend, SentMessage, Topic, call_back, normalize_headers,
                              refuse_schema)

if TYPE_CHECKING:
    from streamkit.streams.stream import Stream

#: The stream an agent task is iterating; set once when its iteration starts.
current_stream: ContextVar[Stream | None] = ContextVar("streamkit_current_stream",
                                                       default=None)
_UNSET: Any = object()


class Event:
    """A decoded message: ``key``, ``value``, ``headers`` and the raw ``message``
    (``.topic .partition .offset .timestamp``); ``stream`` is the stream it came from
    (``event.ack()`` acknowledges it there)."""

    __slots__ = ("key", "value", "headers", "message", "stream")

    def __init__(self, key: Any, value: Any, headers: Headers, message: Message,
                 stream: Stream | None = None) -> None:
        self.key = key
        self.value = value
        self.headers = headers
        self.message = message
        self.stream = stream

    def __repr__(self) -> str:
        m = self.message
        return f"<Event {m.topic}[{m.partition}]@{m.offset} key={self.key!r} value={self.value!r}>"

    @property
    def timestamp(self) -> float:
        """The message timestamp in seconds since the epoch."""
        return self.message.timestamp / 1000.0

    async def forward(self, channel: Any, key: Any = _UNSET, value: Any = _UNSET,
                      partition: int | None = None, timestamp: float | None = None,
                      headers: Any = _UNSET, schema: Any = None,
                      key_serializer: Any = None, value_serializer: Any = None,
                      callback: Callable[[SentMessage], Any] | None = None,
                      force: bool = False) -> PendingSend:
        """Send this message on to another channel unchanged: the original key and
        value bytes, headers and timestamp, except what is given (a given key or
        value is encoded by that channel's serializers, or ``key_serializer``/
        ``value_serializer``). ``channel`` is a Topic, an agent, or a topic's name.
        Buffered; with ``callback`` or ``force`` it is written before this returns
        and ``callback`` gets its metadata. Returns a ``PendingSend``."""
        refuse_schema(schema)
        topic = self._topic_of(channel)
        m = self.message
        record = OutgoingRecord(
            m.key if key is _UNSET else topic.serde_for(
                key_serializer, is_key=True).dumps(key),
            m.value if value is _UNSET else topic.serde_for(
                value_serializer, is_key=False).dumps(value),
            m.headers if headers is _UNSET else normalize_headers(headers),
            m.timestamp if timestamp is None else int(timestamp * 1000), partition)
        return await _written_if_asked(topic.send_raw_soon(record), callback, force)

    async def send(self, channel: Any, key: Any = _UNSET, value: Any = _UNSET,
                   partition: int | None = None, timestamp: float | None = None,
                   headers: Any = _UNSET, schema: Any = None,
                   key_serializer: Any = None, value_serializer: Any = None,
                   callback: Callable[[SentMessage], Any] | None = None,
                   force: bool = False) -> PendingSend:
        """Send this event's key and value (or the given ones) to another channel (a
        Topic, an agent, or a topic's name), encoded by that channel's serializers
        (or the ones given), with this event's headers and timestamp unless others
        are given. ``callback`` and ``force`` as in :meth:`forward`."""
        refuse_schema(schema)
        topic = self._topic_of(channel)
        pending = topic.send_soon(
            key=self.key if key is _UNSET else key,
            value=self.value if value is _UNSET else value,
            headers=self.headers if headers is _UNSET else headers,
            timestamp=self.timestamp if timestamp is None else timestamp,
            partition=partition, key_serializer=key_serializer,
            value_serializer=value_serializer)
        return await _written_if_asked(pending, callback, force)

    def _topic_of(self, channel: Any) -> Topic:
        if isinstance(channel, str):
            if self.stream is None:
                raise TypeError(f"cannot send to {channel!r}: this event has no stream, "
                                "so no app to find a topic of that name in; pass the "
                                "Topic")
            return self.stream.root.context.topic(channel)
        return _topic_of(channel)

    def ack(self) -> bool:
        """Acknowledge this event of a ``noack()`` stream (see ``Stream.ack``); True
        when nothing holds its offset back any more. Events of other streams are
        acknowledged when the agent asks for the next one: this changes nothing."""
        stream = self.stream
        return stream.acknowledge(self) if stream is not None else False


async def _written_if_asked(pending: PendingSend,
                            callback: Callable[[SentMessage], Any] | None,
                            force: bool) -> PendingSend:
    """Faust's ``callback``/``force`` on a buffered send: write it now (awaiting a
    ``PendingSend`` writes the buffer out) and call back with its metadata."""
    if callback is not None or force:
        await call_back(callback, await pending)
    return pending


def _topic_of(channel: Any) -> Topic:
    if isinstance(channel, Topic):
        return channel
    topic = getattr(channel, "channel", None)  # an Agent
    if isinstance(topic, Topic):
        return topic
    raise TypeError(f"cannot send to {channel!r}: expected a Topic, an Agent or a "
                    "topic's name")


def current_event() -> Event | None:
    """The event the calling agent is processing, or None outside an agent."""
    stream = current_stream.get()
    if stream is None:
        return None
    return stream.current_event()
