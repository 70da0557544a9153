"""``Event``: one message as an agent sees it, and ``current_event()``."""
from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from streamkit.types import Headers, Message, OutgoingRecord

from streamkit.topics import PendingSend, Topic

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

    async def forward(self, channel: Any, *, key: Any = _UNSET, headers: Any = _UNSET,
                      partition: int | None = None) -> PendingSend:
        """Send this message on to another topic (or agent) unchanged: the original key
        and value bytes, headers and timestamp. Returns a ``PendingSend``."""
        topic = _topic_of(channel)
        m = self.message
        raw_key = m.key if key is _UNSET else topic.key_serde.dumps(key)
        record = OutgoingRecord(raw_key, m.value,
                                m.headers if headers is _UNSET else headers,
                                m.timestamp, partition)
        return topic.send_raw_soon(record)

    async def send(self, channel: Any, *, key: Any = _UNSET, value: Any = _UNSET,
                   headers: Any = None, partition: int | None = None) -> PendingSend:
        """Send this event's key and value (or the given ones) to another channel,
        encoded by that channel's serializers."""
        topic = _topic_of(channel)
        return topic.send_soon(key=self.key if key is _UNSET else key,
                               value=self.value if value is _UNSET else value,
                               headers=headers if headers is not None else self.headers,
                               timestamp=self.timestamp, partition=partition)

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
    raise TypeError(f"cannot send to {channel!r}: expected a Topic or an Agent")


def current_event() -> Event | None:
    """The event the calling agent is processing, or None outside an agent."""
    stream = current_stream.get()
    if stream is None:
        return None
    return stream.current_event()
