"""The worker's fetch loop: poll the consumer group, decode in batches, feed streams.

One group consumer per worker reads every topic the app's streams consume. Each poll
returns up to ``max_poll_records`` messages; they are cut into runs of one partition,
decoded once per subscribing channel, and handed to the streams as ``Batch``es. A
message that does not decode goes to the dead-letter topic ``<app id>-<topic>-dlq``
(shortened by ``streamkit.names`` when over 249 characters; the names are derived when
the worker starts) with the error in its headers, and the stream goes on without it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from streamkit.errors import DecodeError
from streamkit.names import DEAD_LETTER, derived_topic_name
from streamkit.streams.stream import Batch, Stream
from streamkit.types import Message, OutgoingRecord, TopicPartition

if TYPE_CHECKING:
    from streamkit.topics import Sender, Topic
    from streamkit.transport.base import GroupConsumer

logger = logging.getLogger("streamkit.worker")

#: stop fetching while the streams hold this many undelivered events
MAX_BUFFERED = 20_000
#: distinct decoded keys remembered per channel
KEY_CACHE_SIZE = 10_000
#: keys of a batch looked at to tell whether its keys repeat
KEY_SAMPLE = 32
_IMMUTABLE = (str, int, float, bytes, bool, type(None), tuple)


def partition_runs(messages: list[Message]) -> Iterator[tuple[TopicPartition, list[Message]]]:
    """Cut a poll result into runs of consecutive messages of one partition."""
    if not messages:
        return
    first, last = messages[0], messages[-1]
    if first.partition == last.partition and first.topic == last.topic:
        # a poll returns each partition's messages together: one run
        yield TopicPartition(first.topic, first.partition), messages
        return
    start = 0
    n = len(messages)
    while start < n:
        first = messages[start]
        topic, partition = first.topic, first.partition
        end = start + 1
        while end < n:
            m = messages[end]
            if m.partition != partition or m.topic != topic:
                break
            end += 1
        yield TopicPartition(topic, partition), messages[start:end]
        start = end


class Subscription:
    """The streams of one agent on one channel (``concurrency`` instances)."""

    __slots__ = ("channel", "agent", "streams")

    def __init__(self, channel: Topic, agent: Any = None) -> None:
        self.channel = channel
        self.agent = agent
        self.streams: list[Stream] = []

    def stream_for(self, partition: int) -> Stream:
        streams = self.streams
        return streams[partition % len(streams)]


def _subscription_positions(sub: Subscription, topic: str) -> dict[TopicPartition, int]:
    positions: dict[TopicPartition, int] = {}
    for stream in sub.streams:
        for tp, offset in stream.positions().items():
            if tp.topic == topic:
                positions[tp] = offset
    return positions


class Fetcher:
    """Reads the app's source topics and feeds its streams."""

    def __init__(self, app_id: str, sender: Sender, max_poll_records: int) -> None:
        """``sender`` writes dead letters (and buffered sends when idle); the app id
        begins the dead-letter topics' names."""
        self.app_id = app_id
        self.sender = sender
        self.monitor = sender.monitor
        self.max_poll_records = max_poll_records
        self.subscriptions: dict[str, list[Subscription]] = {}
        #: streams no topic feeds (channels, iterables): stopped with the others,
        #: never polled for, nothing to commit
        self.local_streams: list[Stream] = []
        self.consumer: GroupConsumer | None = None
        self._stopping = False
        #: the wait for records in progress (cancelled to make ``run`` look again)
        self._waiting: anyio.CancelScope | None = None
        self.subscription_changed = False
        self.dead_lettered = 0
        self._key_cache: dict[Topic, dict[bytes | None, Any]] = {}
        #: source topic -> its dead-letter topic
        self._dead_letter_topics: dict[str, str] = {}
        #: called once, after the poll in which partitions were first assigned (and
        #: their tables restored)
        self.on_first_assignment: Any = None

    # -- registration --------------------------------------------------------------
    def add_stream(self, stream: Stream) -> None:
        """Subscribe a stream. The instances of one agent on one channel share the
        channel's partitions; every other agent (or stream) gets every event."""
        channel = stream.channel
        for name in channel.topics:
            subs = self.subscriptions.setdefault(name, [])
            sub = next((s for s in subs if s.channel is channel and stream.agent is not None
                        and s.agent is stream.agent), None)
            if sub is None:
                sub = Subscription(channel, stream.agent)
                subs.append(sub)
                if self.consumer is not None:
                    self.subscription_changed = True
                    self._wake()
            sub.streams.append(stream)

    def add_local_stream(self, stream: Stream) -> None:
        """Count a stream fed by something else than the broker (a channel, an
        iterable) among the streams, so that the worker stops it with the others.
        Streams whose iterable ended are forgotten then."""
        self.local_streams = [s for s in self.local_streams if not s.exhausted]
        self.local_streams.append(stream)

    def topics(self) -> list[str]:
        return sorted(self.subscriptions)

    def dead_letter_topic(self, topic: str) -> str:
        """The dead-letter topic of ``topic``, ``<app id>-<topic>-dlq`` (shortened when
        longer than Kafka allows)."""
        name = self._dead_letter_topics.get(topic)
        if name is None:
            name = self._dead_letter_topics[topic] = derived_topic_name(
                self.app_id, topic, DEAD_LETTER, what="topic")
        return name

    def dead_letter_topics(self) -> list[str]:
        """The dead-letter topics of every topic the streams consume; the worker derives
        them at start, so a name problem shows then, not at the first bad message."""
        return [self.dead_letter_topic(topic) for topic in self.topics()]

    def streams(self) -> Iterator[Stream]:
        """Every stream, once (a stream over several topics, as an agent's over a
        stream-stream join, is in the subscription of each)."""
        yield from {id(stream): stream for subs in self.subscriptions.values()
                    for sub in subs for stream in sub.streams}.values()
        yield from self.local_streams

    def buffered(self) -> int:
        return sum(s.buffered() for s in self.streams())

    def pause_for_commit(self, gate: anyio.Event) -> list[Stream]:
        """Stop every stream of a topic at its next event boundary until ``gate`` is
        set (see ``Stream.pause_for_commit``); returns them."""
        streams = list({id(stream): stream for subs in self.subscriptions.values()
                        for sub in subs for stream in sub.streams}.values())
        for stream in streams:
            stream.pause_for_commit(gate)
        return streams

    # -- positions -------------------------------------------------------------------
    def positions(self) -> dict[TopicPartition, int]:
        """Per partition, the offset every subscriber of it is done with (a partition
        some subscriber has not reached yet is left out)."""
        merged: dict[TopicPartition, int] = {}
        for name, subs in self.subscriptions.items():
            first, *rest = [_subscription_positions(sub, name) for sub in subs]
            for tp, offset in first.items():
                for other in rest:
                    done = other.get(tp)
                    if done is None:
                        break
                    offset = min(offset, done)
                else:
                    merged[tp] = offset
        return merged

    # -- the loop ----------------------------------------------------------------------
    def stop(self) -> None:
        self._stopping = True
        self._wake()

    def _wake(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()

    async def run(self, consumer: GroupConsumer) -> None:
        """Poll and dispatch until stopped."""
        self.consumer = consumer
        max_records = self.max_poll_records
        buffer = self.sender.buffer
        idle = 0.001
        paused: set[TopicPartition] = set()
        while not self._stopping:
            if self.subscription_changed:
                return  # the worker joins again with the new topics (Worker._fetch)
            if self.buffered() >= MAX_BUFFERED:
                # the agents are behind: stop fetching but keep polling, which is what
                # keeps this worker in its group (heartbeats happen inside poll)
                if not paused:
                    paused = consumer.assignment()
                    consumer.pause(paused)
                messages = consumer.poll(max_records, 0.0)
                if messages:  # partitions assigned meanwhile are not paused
                    self.dispatch(messages)
                await anyio.sleep(0.001)
                continue
            if paused:
                consumer.resume(paused & consumer.assignment())
                paused = set()
            messages = consumer.poll(max_records, 0.0)
            if self.on_first_assignment is not None and consumer.assignment():
                callback, self.on_first_assignment = self.on_first_assignment, None
                callback()
            if not messages:
                if len(buffer):
                    buffer.flush()  # idle: do not make sends wait
                idle = await self._wait(consumer, idle)
                continue
            idle = 0.001
            self.dispatch(messages)
            await anyio.lowlevel.checkpoint()

    async def _wait(self, consumer: GroupConsumer, idle: float) -> float:
        """Caught up: wait for an append to a partition of ours (decision 111), or
        until the consumer must poll again for the group; returns the next back-off
        for a consumer with no descriptor to wait on (Kafka), which sleeps instead."""
        fd, seconds = consumer.prepare_wait()
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return idle
        if fd is None:
            await anyio.sleep(min(seconds, idle))
            return min(idle * 2, 0.02)
        with anyio.CancelScope(deadline=anyio.current_time() + seconds) as scope:
            self._waiting = scope
            try:
                await anyio.wait_readable(fd)
            finally:
                self._waiting = None
        return idle

    def dispatch(self, messages: list[Message]) -> None:
        for tp, run in partition_runs(messages):
            for sub in self.subscriptions.get(tp.topic, ()):
                batch = self.decode(sub.channel.source(tp.topic), tp, run)
                sub.stream_for(tp.partition).deliver(batch)
        self.monitor.on_fetch(messages)

    def decode(self, channel: Topic, tp: TopicPartition, messages: list[Message]) -> Batch:
        end_offset = messages[-1].offset + 1
        value_serde = channel.value_serde
        try:
            keys: list[Any] | Callable[[list[Message]], list[Any]]
            if channel.keys_cannot_fail:
                # (untyped keys) decoding waits until the keys are asked for
                keys = partial(self._decode_message_keys, channel)
            else:
                keys = self._decode_keys(channel, [m.key for m in messages])
            values = value_serde.loads_many([m.value for m in messages])
        except DecodeError:
            messages, keys, values = self._decode_one_by_one(channel, messages)
        extractor = channel.timestamp_extractor
        if extractor is not None:
            for m, v in zip(messages, values, strict=True):
                m.timestamp = int(extractor(m, v) * 1000)
        return Batch(tp, messages, keys, values, end_offset)

    def _decode_message_keys(self, channel: Topic, messages: list[Message]) -> list[Any]:
        return self._decode_keys(channel, [m.key for m in messages])

    def _decode_keys(self, channel: Topic, raw_keys: list[bytes | None]) -> list[Any]:
        """Keys repeat (vendors, locations): decode each distinct key bytes once."""
        cache = self._key_cache.get(channel)
        if cache is None:
            cache = self._key_cache[channel] = {None: None}
        try:
            return [cache[raw] for raw in raw_keys]
        except KeyError:
            pass
        # mostly keys not seen before (ids, not vendors; judged by the first ones):
        # decoding the batch as it is costs less than filling a cache the next batches
        # would not hit
        first = raw_keys[:KEY_SAMPLE]
        if sum(raw not in cache for raw in first) * 2 > len(first):
            return channel.key_serde.loads_many(raw_keys)
        missing = list({raw for raw in raw_keys if raw not in cache})
        decoded = channel.key_serde.loads_many(missing)
        if len(cache) > KEY_CACHE_SIZE:
            cache.clear()
            cache[None] = None
        for raw, key in zip(missing, decoded, strict=True):
            if isinstance(key, _IMMUTABLE):
                cache[raw] = key
        return [cache[raw] if raw in cache else channel.key_serde.loads(raw)
                for raw in raw_keys]

    def _decode_one_by_one(self, channel: Topic, messages: list[Message]
                           ) -> tuple[list[Message], list[Any], list[Any]]:
        good: list[Message] = []
        keys: list[Any] = []
        values: list[Any] = []
        for m in messages:
            try:
                key = channel.key_serde.loads(m.key)
                value = channel.value_serde.loads(m.value)
            except DecodeError as exc:
                self.dead_letter(m, exc)
                continue
            good.append(m)
            keys.append(key)
            values.append(value)
        return good, keys, values

    def dead_letter(self, message: Message, error: Exception) -> None:
        """Write an undecodable message, unchanged, to its dead-letter topic."""
        dlq = self.dead_letter_topic(message.topic)
        headers = list(message.headers) + [
            ("streamkit.error", str(error).encode()),
            ("streamkit.error.type", type(error).__name__.encode()),
            ("streamkit.source.topic", message.topic.encode()),
            ("streamkit.source.partition", str(message.partition).encode()),
            ("streamkit.source.offset", str(message.offset).encode()),
        ]
        self.sender.buffer.append(dlq, OutgoingRecord(message.key, message.value, headers,
                                                      message.timestamp, None),
                                  want_result=False)
        self.dead_lettered += 1
        self.monitor.on_dead_letter(message.topic)
        logger.warning("undecodable message %s[%d]@%d sent to %s: %s", message.topic,
                       message.partition, message.offset, dlq, error)
