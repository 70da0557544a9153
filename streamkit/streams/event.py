"""``Event``: one message as an agent sees it, and ``current_event()``."""
from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from streamkit.types import Headers, Message, OutgoingRecord

from streamkit.topics import PendingSend, Topic, normalize_headers

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
                      headers: Any = _UNSET) -> PendingSend:
        """Send this message on to another channel unchanged: the original key and
        value bytes, headers and timestamp, except what is given (a given key or
        value is encoded by that channel's serializers). ``channel`` is a Topic, an
        agent, or a topic's name. Returns a ``PendingSend``."""
        topic = self._topic_of(channel)
        m = self.message
        record = OutgoingRecord(
            m.key if key is _UNSET else topic.key_serde.dumps(key),
            m.value if value is _UNSET else topic.value_serde.dumps(value),
            m.headers if headers is _UNSET else normalize_headers(headers),
            m.timestamp if timestamp is None else int(timestamp * 1000), partition)
        return topic.send_raw_soon(record)

    async def send(self, channel: Any, key: Any = _UNSET, value: Any = _UNSET,
                   partition: int | None = None, timestamp: float | None = None,
                   headers: Any = _UNSET) -> PendingSend:
        """Send this event's key and value (or the given ones) to another channel (a
        Topic, an agent, or a topic's name), encoded by that channel's serializers,
        with this event's headers and timestamp unless others are given."""
        topic = self._topic_of(channel)
        return topic.send_soon(key=self.key if key is _UNSET else key,
                               value=self.value if value is _UNSET else value,
                               headers=self.headers if headers is _UNSET else headers,
                               timestamp=self.timestamp if timestamp is None else timestamp,
                               partition=partition)

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
