"""``Stream``: what an agent iterates with ``async for``.

The worker's fetcher hands a stream whole ``Batch``es (one topic partition, already
decoded); the stream gives the agent one value at a time from the batch it holds. An
event is *done* when the agent asks for the next one: ``positions()`` reports, per
partition, the offset after the last done event, and that is what the worker commits.

Operators (``filter``, ``take``, ``enumerate``, ``echo``, ``items``, ``events``,
``join``, see ``streamkit.streams.join``) are async generators over the values;
``group_by`` and ``through`` continue on another topic (see
``streamkit.streams.repartition``); ``noack`` hands acknowledgement to the agent
(``streamkit.streams.acks``) and ``tee`` splits a stream (``streamkit.streams.tee``).

A stream made with a ``source`` (``app.stream([1, 2, 3])``) reads that iterable instead
of being fed batches, and ends with it.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from streamkit.streams.acks import PendingAcks
from streamkit.streams.event import Event, current_stream
from streamkit.streams.operators import (TICK, _echo, _enumerate, _events, _filter,
                                         _items, _noack, _stamp, _take, _Tick)
from streamkit.streams.tee import Tee
from streamkit.types import Message, TopicPartition

if TYPE_CHECKING:
    from streamkit.streams.context import StreamContext
    from streamkit.topics import Topic


class Batch:
    """Decoded messages of one topic partition, in offset order.

    ``end_offset`` is the offset after the batch, which also covers messages that were
    dropped before the agent (undecodable ones sent to the dead-letter topic).

    ``keys`` may be given as a function of the messages instead, for keys whose
    decoding cannot fail: they are decoded when first asked for, so an agent that
    reads only values never pays for them.
    """

    __slots__ = ("tp", "messages", "_keys", "values", "end_offset", "done", "delivered_at")

    def __init__(self, tp: TopicPartition, messages: list[Message],
                 keys: list[Any] | Callable[[list[Message]], list[Any]],
                 values: list[Any], end_offset: int, done: anyio.Event | None = None
                 ) -> None:
        self.tp = tp
        self.messages = messages
        self._keys = keys
        self.values = values
        self.end_offset = end_offset
        self.done = done
        self.delivered_at = 0.0

    @property
    def keys(self) -> list[Any]:
        """The decoded key of each message."""
        keys = self._keys
        if callable(keys):
            keys = self._keys = keys(self.messages)
        return keys


class BatchSource(Protocol):
    """What a stream reads when nothing feeds it: the next batch, None at the end."""

    async def next_batch(self) -> Batch | None: ...


class _Operators:
    """Stream operators shared by root and derived streams."""

    root: Stream

    def __aiter__(self) -> AsyncIterator[Any]:
        raise NotImplementedError

    def _derive(self, make: Callable[[], AsyncIterator[Any]]) -> DerivedStream:
        return DerivedStream(self.root, make)

    def filter(self, predicate: Callable[[Any], Any]) -> DerivedStream:
        """Only the values for which ``predicate(value)`` is true (may be async)."""
        return self._derive(lambda: _filter(self, predicate))

    def enumerate(self, start: int = 0) -> DerivedStream:
        """``(index, value)`` pairs."""
        return self._derive(lambda: _enumerate(self, start))

    def take(self, max_: int, within: float | None = None) -> DerivedStream:
        """Lists of up to ``max_`` values; with ``within`` (seconds) a shorter list is
        given once that long has passed since its first value. The events in a list
        count as done only when the agent asks for the next list."""
        return self._derive(lambda: _take(self, max_, within))

    def take_with_timeout(self, max_: int, within: float) -> DerivedStream:
        """``take(max_, within=within)``: lists of up to ``max_`` values, a shorter
        one once ``within`` seconds have passed since its first value."""
        return self.take(max_, within=within)

    def take_with_timestamp(self, max_: int, within: float | None,
                            timestamp_field_name: str) -> DerivedStream:
        """Like ``take``; each value that is a dict gets its message's timestamp
        (seconds) under ``timestamp_field_name`` (Faust's)."""
        return self._derive(lambda: _stamp(self, timestamp_field_name)).take(
            max_, within=within)

    def take_events(self, max_: int, within: float | None = None) -> DerivedStream:
        """Like ``take``, with lists of ``Event`` objects instead of values."""
        return self.events().take(max_, within=within)

    def noack_take(self, max_: int, within: float | None = None) -> DerivedStream:
        """Lists of up to ``max_`` events that count as done only once acknowledged
        (``await stream.ack(event)``, ``event.ack()``), as after ``noack()``."""
        return self.noack().take_events(max_, within=within)

    def noack(self) -> DerivedStream:
        """The same values, each done only once acknowledged (``await
        stream.ack(event)`` or ``event.ack()``), not when the next is asked for.
        Offsets are committed up to the first unacknowledged event of a partition;
        see ``streamkit.streams.acks``."""
        return self._derive(lambda: _noack(self))

    async def ack(self, event: Event) -> bool:
        """Acknowledge ``event`` of a ``noack()`` stream; True when nothing holds its
        offset back any more (False also for an event acknowledged already)."""
        return self.root.acknowledge(event)

    def tee(self, n: int = 2) -> tuple[DerivedStream, ...]:
        """``n`` streams that each see every value, in lockstep: iterate each in a
        task of its own (see ``streamkit.streams.tee``)."""
        if n < 1:
            raise ValueError(f"tee({n}): n must be at least 1")
        return Tee(self, n).branches(n)

    def echo(self, *channels: Any) -> DerivedStream:
        """Forward every event unchanged to ``channels`` and yield its value."""
        return self._derive(lambda: _echo(self, channels))

    def items(self) -> DerivedStream:
        """``(key, value)`` pairs."""
        return self._derive(lambda: _items(self))

    def events(self) -> DerivedStream:
        """``Event`` objects (key, value, headers, message)."""
        return self._derive(lambda: _events(self))

    def group_by(self, key: Any, *, name: str | None = None,
                 partitions: int | None = None) -> Any:
        """Re-key the stream by ``key`` (a Record field such as ``TaxiRide.vendorId``
        or a callable of the value) through the internal topic
        ``<app id>-<name>-repartition``, and continue on the partition that owns
        the new key."""
        return self.root.context.repartition.group_by(self, key, name=name,
                                                       partitions=partitions)

    def through(self, channel: Any) -> Any:
        """Forward every event to ``channel`` (a topic or its name) and continue by
        consuming that topic."""
        root = self.root
        topic = root.context.topic(channel) if isinstance(channel, str) else channel
        return root.context.repartition.through(self, topic)

    def join(self, table: Any, *, on: Any = None, how: str = "inner",
             as_of: bool = False) -> DerivedStream:
        """``(value, table_value)`` pairs: each event with the table's current value
        for its key (``on=``, a Record field or callable of the value, with a
        GlobalTable). ``how="inner"`` drops events the table has no value for,
        ``"left"`` gives them with None. ``as_of=True`` (a versioned table): the
        value valid at the event's timestamp. See ``streamkit.streams.join``."""
        from streamkit.streams.join import join
        return join(self, table, on, how, as_of)

    def current_event(self) -> Event | None:
        return self.root.current_event()


class Stream(_Operators):
    """The stream of one topic (or one agent instance of it)."""

    def __init__(self, channel: Topic, *, context: StreamContext, index: int = 0,
                 agent: Any = None, source: BatchSource | None = None) -> None:
        """``source``: batches to read instead of being fed (``app.stream(iterable)``;
        see ``streamkit.streams.channel``)."""
        self.context = context
        self._source = source
        self.channel = channel
        self.index = index
        self.agent = agent
        self.root = self
        self._batches: deque[Batch] = deque()
        self._waiter: anyio.Event | None = None
        #: set when the agent takes a batch (a channel's send waits for room on it)
        self._room: anyio.Event | None = None
        self.batch: Batch | None = None
        self.cursor = 0
        self._event: Event | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._held: dict[TopicPartition, int] | None = None
        self.stopping = False
        #: set to leave the batch in hand after the current event (stop, revoke)
        self._interrupt = False
        #: on a graceful stop, finish the batches already fetched first: set when other
        #: agents read the same topic, so that all of them stop at the same offsets
        #: (they share one committed offset per partition)
        self.drain_on_stop = False
        self._revoked: Batch | None = None
        #: set while a commit waits for the agent to be between two events
        #: (exactly_once): the stream waits on it before handing out the next one
        self._gate: anyio.Event | None = None
        #: True while the agent holds no event: waiting for a batch, at the gate
        self.between_events = True
        self.tick_after: float | None = None
        self.events_total = 0
        #: set by ``group_by``/``through``: a task moves this stream to another topic
        self.consumed_by_repartition = False
        #: the streams ``group_by``/``through`` continued on, by topic name
        self.continuations: dict[str, Stream] = {}
        #: events handed to a ``noack()`` layer and not acknowledged yet
        self.pending = PendingAcks()
        #: set when the ``source`` has no more values
        self.exhausted = False

    def __repr__(self) -> str:
        return f"<Stream {self.channel.name}#{self.index}>"

    # -- fed by the fetcher ----------------------------------------------------------
    def deliver(self, batch: Batch) -> None:
        batch.delivered_at = time.monotonic()
        self._batches.append(batch)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    def buffered(self) -> int:
        """Events waiting in this stream, not yet given to the agent."""
        return sum(len(b.values) for b in self._batches)

    async def wait_for_room(self, maxsize: int) -> None:
        """Return once fewer than ``maxsize`` events wait in this stream (or it
        stops)."""
        while self.buffered() >= maxsize and not self.stopping:
            room = self._room = self._room or anyio.Event()
            await room.wait()

    def _made_room(self) -> None:
        room = self._room
        if room is not None:
            self._room = None
            room.set()

    def drop_partitions(self, tps: set[TopicPartition]) -> None:
        """Forget buffered batches and positions of partitions given up on rebalance.
        The batch in hand, if it is of one of them, ends after the event in hand: the
        rest of it belongs to the partition's new owner now."""
        self._batches = deque(b for b in self._batches if b.tp not in tps)
        self.pending.drop(tps)
        for tp in tps:
            self._positions.pop(tp, None)
            if self._held is not None:
                self._held.pop(tp, None)
        batch = self.batch
        if batch is not None and batch.tp in tps:
            self._revoked = batch
            self._interrupt = True

    def pause_for_commit(self, gate: anyio.Event) -> None:
        """Hand out no more events until ``gate`` is set: the agent stops between the
        event in hand and the next, so that a commit holds every effect of the events
        it commits the offsets of, and none of the others'."""
        self._gate = gate
        self._interrupt = True

    def holds_event(self) -> bool:
        """Whether the agent is inside an event: some of its effects may be made,
        others not yet."""
        return not self.between_events and self.batch is not None

    async def _pass_gate(self) -> None:
        gate = self._gate
        if gate is None:
            return
        self.between_events = True
        try:
            await gate.wait()
        finally:
            self.between_events = False
        if self._gate is gate:
            self._gate = None
        # (what else may have asked the loop to stop after this event still does)
        self._interrupt = (self.stopping and not self.drain_on_stop) or \
            self._revoked is not None

    def stop(self) -> None:
        """End the agent's iteration after the event in hand (or, with
        ``drain_on_stop``, after the batches already fetched)."""
        self.stopping = True
        self._interrupt = not self.drain_on_stop
        self._made_room()
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    # -- progress ----------------------------------------------------------------------
    def positions(self) -> dict[TopicPartition, int]:
        """Per partition, the offset after the last event the agent is done with."""
        if self._held is not None:
            return dict(self._held)
        positions = dict(self._positions)
        batch = self.batch
        if batch is not None and self.cursor > 0:
            positions[batch.tp] = batch.messages[self.cursor - 1].offset + 1
        if self.pending:
            for tp, first in self.pending.first().items():
                positions[tp] = min(positions.get(tp, first), first)
        return positions

    def acknowledge(self, event: Event) -> bool:
        """See ``ack``."""
        m = event.message
        return self.pending.ack(TopicPartition(m.topic, m.partition), m.offset)

    def hold(self) -> None:
        """Freeze ``positions()`` where it is (``take`` holds while it collects)."""
        if self._held is None:
            self._held = self.positions()

    def release(self) -> None:
        self._held = None

    def rekey(self, key: Any) -> None:
        """Give the event in hand another key (``group_by`` in a test context)."""
        batch = self.batch
        if batch is not None and self.cursor < len(batch.values):
            batch.keys[self.cursor] = key
            self._event = None

    def skip_in_flight(self) -> None:
        """Count the event in hand as done (its agent raised on it)."""
        batch = self.batch
        if batch is not None and self.cursor < len(batch.values):
            self.pending.settle(batch.tp, batch.messages[self.cursor].offset)
            self.cursor += 1
        self._held = None

    def current_event(self) -> Event | None:
        batch = self.batch
        if batch is None or self.cursor >= len(batch.values):
            return None
        event = self._event
        i = self.cursor
        if event is None or event.message is not batch.messages[i]:
            event = self._pick_event(batch, i)
        return event

    # -- iteration -----------------------------------------------------------------------
    async def _next_batch(self) -> Batch | _Tick | None:
        """The next batch; None when the stream stops; TICK when a take() deadline
        passes first."""
        while not self._batches:
            if self.stopping:
                return None
            if self._source is not None:
                self.between_events = True
                try:
                    source_batch = await self._source.next_batch()
                finally:
                    self.between_events = False
                if source_batch is None:
                    self.exhausted = True
                    return None
                self._batches.append(source_batch)
                break
            waiter = self._waiter = anyio.Event()
            self.between_events = True
            ticking = self.tick_after is not None
            try:
                if self.tick_after is None:
                    await waiter.wait()
                else:
                    with anyio.move_on_after(max(0.0,
                                                 self.tick_after - time.monotonic())):
                        await waiter.wait()
            finally:
                self.between_events = False
            if ticking and not waiter.is_set():
                self._waiter = None
                return TICK
        batch = self._batches.popleft()
        self._made_room()
        self.batch = batch
        self.cursor = 0
        return batch

    def _drop_revoked_batch(self) -> None:
        """Leave a batch of a partition given up meanwhile: no position for it."""
        self._revoked = None
        self._interrupt = self.stopping
        self.batch = None
        self.cursor = 0
        self._event = None

    def _finish_batch(self, batch: Batch) -> None:
        self._positions[batch.tp] = batch.end_offset
        self.events_total += len(batch.values)
        self.context.monitor.on_batch_done(time.monotonic() - batch.delivered_at,
                                           len(batch.values))
        self.batch = None
        self.cursor = 0
        if batch.done is not None:
            batch.done.set()

    async def _take_batch(self) -> Batch | _Tick | None:
        """The batch to go on with: the one in hand unless its partition was given up,
        else the next (None when the stream stops; TICK at a take() deadline)."""
        batch = self.batch
        if batch is not None and self._revoked is batch:
            self._drop_revoked_batch()
            batch = None
        if batch is None:
            return await self._next_batch()
        return batch

    def _leave_batch(self, batch: Batch, i: int) -> bool:
        """After the loop over ``batch`` stopped at ``i``: finish it if it was read to
        its end; whether the stream stops here."""
        if self._revoked is batch:
            self._drop_revoked_batch()
        elif i >= len(batch.values):
            self._finish_batch(batch)
        return self.stopping and not (self.drain_on_stop and self._batches)

    async def _iterate(self, pick: Callable[[Batch, int], Any] | None
                       ) -> AsyncIterator[Any]:
        current_stream.set(self)
        while True:
            if self._gate is not None:
                await self._pass_gate()
            batch = await self._take_batch()
            if batch is None:
                return
            if isinstance(batch, _Tick):
                yield TICK
                continue
            i = self.cursor
            n = len(batch.values)
            # two copies of the loop on purpose: plain values (the hot path) cost no
            # call per event; items()/events() pick through a function
            if pick is None:
                values = batch.values
                while i < n:
                    yield values[i]
                    i += 1
                    self.cursor = i
                    if self._interrupt:
                        break
            else:
                while i < n:
                    yield pick(batch, i)
                    i += 1
                    self.cursor = i
                    if self._interrupt:
                        break
            if self._leave_batch(batch, i):
                return

    async def _iterate_results(self, take: Callable[[Batch, int], tuple[int, list[Any]]],
                               settle: Callable[[Batch], None]) -> AsyncIterator[Any]:
        """The results of events that give any number each (a stream-stream join's):
        ``take(batch, i)`` takes the events from ``i`` on until one gives results and
        returns its index and results (the batch's length and none at its end), in a
        loop of its own: an event with no result costs no step of this generator.
        Each result is given with its event in hand (the cursor on it); once the
        consumer asks for more after its last, the event is done: ``take`` learns it
        from the next call (the events before its ``i`` are done), ``settle(batch)``
        when the loop leaves the batch after it."""
        current_stream.set(self)
        while True:
            if self._gate is not None:
                await self._pass_gate()
            batch = await self._take_batch()
            if batch is None:
                return
            if isinstance(batch, _Tick):
                yield TICK
                continue
            i = self.cursor
            n = len(batch.values)
            while i < n:
                i, results = take(batch, i)
                self.cursor = i
                if i >= n:
                    break
                for result in results:
                    yield result
                i += 1
                self.cursor = i
                if i >= n or self._interrupt:
                    settle(batch)
                    break
            if self._leave_batch(batch, i):
                return

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate(None)

    # the root stream's items() and events() pick from the batch in its own loop (no
    # operator in between, no event built per value); a derived stream's go through
    # the operators of _Operators
    def items(self) -> DerivedStream:
        return self._derive(lambda: self._iterate(_pick_item))

    def events(self) -> DerivedStream:
        return self._derive(lambda: self._iterate(self._pick_event))

    def _pick_event(self, batch: Batch, i: int) -> Event:
        """The event of ``batch[i]``, kept as the current one."""
        message = batch.messages[i]
        event = self._event = Event(batch.keys[i], batch.values[i], message.headers,
                                    message, self)
        return event

    async def batches(self) -> AsyncIterator[Batch]:
        """Whole batches; each counts as done when the next is asked for."""
        current_stream.set(self)
        while True:
            if self._gate is not None:
                await self._pass_gate()
            batch = self.batch
            if batch is None:
                got = await self._next_batch()
                if not isinstance(got, Batch):
                    return      # stopped (no take() deadline ticks here)
                batch = got
            self.cursor = 0
            yield batch
            self.cursor = len(batch.values)
            if self._revoked is batch:
                self._drop_revoked_batch()
            else:
                self._finish_batch(batch)
            if self.stopping and not (self.drain_on_stop and self._batches):
                return


def _pick_item(batch: Batch, i: int) -> tuple[Any, Any]:
    return batch.keys[i], batch.values[i]


class DerivedStream(_Operators):
    """A stream made by an operator over another stream."""

    def __init__(self, root: Stream, make: Callable[[], AsyncIterator[Any]]) -> None:
        self.root = root
        self._make = make
        self.context = root.context
        self.channel = root.channel

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._make()
