"""``WindowJoinBuffer``: the state of a stream-stream join, kept as a table.

``pickups.join(dropoffs, within=..., grace=..., how=...)`` pairs records of two
co-partitioned topics that have the same key and close timestamps: a left record at
``t`` joins the right records at ``t - before <= t' <= t + after``. Each record waits
in this table, under its key, until its window has closed (decision 048):

- each side has its own **stream time** per partition: the largest timestamp seen on
  that topic's partition. Each topic is read in order, but the two are not read in
  step with each other, so one side's time says nothing about the other's records;
- a record more than ``grace`` behind its own side's stream time is **late**: dropped
  and counted, as is a record with no key or no value;
- a left record's **window closes** when the right side's stream time passes
  ``t + after + grace`` (a right record's: the left side's passes ``t' + before +
  grace``): every right record that could still join it would be late by then;
- a closed record leaves the buffer; with ``how="left"`` (left records) or
  ``"outer"`` (both sides) one that never joined is given then, once, as
  ``(record, None)`` or ``(None, record)``. Nothing is given early and taken back, and
  a record that is not late always finds every record it can join still buffered;
- a record that arrives when its window has closed already (the other topic is read
  ahead of its own) joins what is buffered and is not kept; one that joined nothing
  is given at once.

Closing is done in buckets of closing time (``Closing``): a record may leave the
buffer up to 1/64 of the window (at least a second) after its window closed, which
changes when an unjoined record comes out, never which pairs are made.

A pair is given as soon as its second record arrives. A key's buffered records are a
tuple of entries ``(timestamp ms, side, joined, value bytes)``: the value as it came
from the topic, decoded with its side's types only when it joins. Tuples of bytes and
ints, never lists, so that the garbage collector stops tracking them: a buffer holds
hours of records, and a list per record made each full collection walk them all (a
third of the join's time at 400k records). Keys are the records' key bytes (equal keys are
equal bytes, as in Kafka); each side's stream time is kept, at each commit, under
the keys 0 and 1.

The table is committed, changelogged and restored like any other, so a restarted
worker goes on with the same buffers and stream times; the closing times are rebuilt
from the buffer when a partition is restored.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable, MutableMapping
from typing import Any, Protocol

import msgspec
import ormsgpack

from streamkit.errors import ImproperlyConfigured
from streamkit.serializers import Serde
from streamkit.tables.context import TableContext
from streamkit.tables.table import _ABSENT, _DELETED, Table
from streamkit.types import Message, TopicPartition

LEFT = 0
RIGHT = 1
#: what begins a record key in the changelog and the store (a side's stream time: b"t")
_KEY = b"k"
#: what ``_read`` gives for a key neither the cache nor the store holds
_FRESH: Any = object()
#: stream time of a partition nothing has been seen on
_NEVER = -(1 << 62)
#: the stream time at which a side with nothing buffered closes something: never
_LAST = 1 << 62

#: one result: ``(left value, right value)``, or ``(key bytes, (left, right))`` when
#: the results are asked for with their keys
JoinResult = tuple[Any, Any]


class RecordBatch(Protocol):
    """What ``take`` reads of a batch of one topic partition (the stream's ``Batch``)."""

    tp: TopicPartition
    messages: list[Message]
    values: list[Any]


class BufferedRecords:
    """The codec of the buffers' values, tuples of ``(timestamp, side, joined, value
    bytes)`` (or a stream time, an int): msgpack, written by ormsgpack (as the log's
    batches are), read by msgspec straight into tuples (see the module docstring)."""

    _decode = msgspec.msgpack.Decoder(tuple[tuple[int, int, int, bytes], ...] | int).decode

    def dumps(self, entries: Any) -> bytes:
        return ormsgpack.packb(entries)

    def loads(self, data: bytes) -> Any:
        return self._decode(data)


_BUFFERED = BufferedRecords()


class Closing:
    """When the buffered records of one side of one partition close: their keys in
    buckets of ``step`` ms of closing time. A bucket is taken once the other side's
    stream time has passed its end, so a record is let go at most ``step`` after its
    window closed (pairs are not affected: a record that could join one whose window
    has closed is late). Buckets instead of a heap per record: one list append per
    record, and the closing of many records at once."""

    __slots__ = ("step", "buckets", "order")

    def __init__(self, step: int) -> None:
        self.step = step
        self.buckets: dict[int, list[bytes]] = {}
        #: the bucket numbers, a heap
        self.order: list[int] = []

    def add(self, closes_at: int, key: bytes) -> None:
        bucket = closes_at // self.step
        keys = self.buckets.get(bucket)
        if keys is None:
            self.open(bucket, key)
        else:
            keys.append(key)

    def open(self, bucket: int, key: bytes) -> None:
        """Start ``bucket`` with ``key``."""
        self.buckets[bucket] = [key]
        heapq.heappush(self.order, bucket)

    def take(self, now: int) -> dict[bytes, None]:
        """The keys of the buckets that end at or before ``now``, once each."""
        keys: dict[bytes, None] = {}
        order, buckets = self.order, self.buckets
        last = now // self.step
        while order and order[0] < last:
            keys.update(dict.fromkeys(buckets.pop(heapq.heappop(order))))
        return keys


class Held:
    """``take``'s view of one partition the worker holds: its cache and changed
    keys (the table's own), and the join's stream times, closing times, and keys in
    the store. Gathered once, dropped whenever the table replaces a cache or a set of
    changed keys (``_forget_hot``)."""

    __slots__ = ("partition", "store", "cache", "dirty", "stored", "times", "closing",
                 "sides")

    def __init__(self, partition: int, store: Any, cache: dict[Any, Any], dirty: set[Any],
                 stored: set[bytes], times: list[int],
                 closing: tuple[Closing, Closing]) -> None:
        self.partition = partition
        self.store = store
        self.cache = cache
        self.dirty = dirty
        self.stored = stored
        self.times = times
        self.closing = closing
        #: per side, what ``take`` needs for a batch of it, in one tuple (``_hold``)
        self.sides: tuple[tuple[Any, ...], ...] = ()


class WindowJoinBuffer(Table):
    """See the module docstring. Made by the app for an agent over a
    ``TopicJoin``."""

    def __init__(self, name: str, *, context: TableContext, left_topic: str,
                 right_topic: str, load_left: Callable[[bytes], Any],
                 load_right: Callable[[bytes], Any], before_ms: int, after_ms: int,
                 grace_ms: int, how: str, drops: MutableMapping[str, int]) -> None:
        #: per partition, the record whose results the agent is not done with: the
        #: stream times and each key's records before it (``flush`` writes those)
        self._in_flight: dict[int, dict[Any, Any]] = {}
        #: per partition held, what ``take`` needs of it (see ``Held``)
        self._held: dict[int, Held] = {}
        # (no partitions=: open() takes the topics' count)
        super().__init__(name, context=context,
                         help=f"window buffers of the {how} join of {left_topic} "
                              f"and {right_topic}")
        self.value_serde = Serde(None, _BUFFERED)
        self._json_int_values = False
        self._dump_value = ormsgpack.packb
        # keys are encoded by _dump_key alone (a flush of just stream times, ints,
        # must not take the plain-JSON path)
        self._json_int_keys = False
        self.left_topic = left_topic
        self.right_topic = right_topic
        self._load = (load_left, load_right)
        self.before_ms = before_ms
        self.after_ms = after_ms
        self.grace_ms = grace_ms
        #: how long after its timestamp a record of each side stays joinable
        self._reach = (after_ms + grace_ms, before_ms + grace_ms)
        self.how = how
        self._unjoined_given = (how in ("left", "outer"), how == "outer")
        self._drops = drops
        #: per partition: the stream time of each side (also kept in the table, under
        #: the keys 0 and 1), and when each side's buffered records close
        self._time: dict[int, list[int]] = {}
        self._closing: dict[int, tuple[Closing, Closing]] = {}
        #: the buckets of closing times: 1/64 of the longest time a record is kept,
        #: at least a second
        self._step = max(1000, (before_ms + after_ms + grace_ms) // 64)
        #: changed keys at which to ask for an early commit (as ``_write_at`` does)
        self._dirty_limit = 1
        #: per partition, the keys its store holds (or more): a key in neither the
        #: cache nor this set is not buffered, and costs no store read; a buffered key
        #: not in it was first buffered since the last commit, and neither the store
        #: nor the changelog has ever had it (or their last record of it is a
        #: tombstone): if it goes before the next commit it is forgotten, unwritten
        self._stored: dict[int, set[bytes]] = {}

    def __repr__(self) -> str:
        return (f"<WindowJoinBuffer {self.name}: {self.left_topic} {self.how} "
                f"{self.right_topic}>")

    # -- joining -------------------------------------------------------------------------
    def take(self, batch: RecordBatch, start: int, keyed: bool = False
             ) -> tuple[int, list[JoinResult]]:
        """Take the records of ``batch`` (one topic partition, its values decoded)
        from ``start`` on until one gives results; returns its index and the results,
        in order: the other side's records whose window it closed, then its own pairs
        (the batch's length and none if no record gave any); each result is
        ``(left, right)``, or ``(key bytes, (left, right))`` if ``keyed``. Until the
        agent is done with them (the next ``take`` of the partition, or ``settle``), a
        commit writes the buffers as they were before that record (see ``flush``).
        One loop per batch: what a record needs of its side and partition is looked
        up once, in one tuple."""
        tp, messages, values = batch.tp, batch.messages, batch.values
        partition = tp.partition
        n = len(values)
        in_flight = self._in_flight
        held = self._held.get(partition)
        if held is None:
            held = self._hold(partition)
            if held is None:
                return n, []    # revoked meanwhile: its new owner joins these records
        in_flight.pop(partition, None)      # (settled: the records before start)
        (side, other, times, cache, dirty, stored, own_closing, own_buckets, other_order,
         step, grace, reach, dirty_limit, given, drops, name
         ) = held.sides[tp.topic == self.right_topic]
        # the other side's stream time does not move in this loop (nor do its closing
        # times, but by _close): the bucket of its stream time, and the stream time of
        # this side at which the next of its buckets closes
        other_bucket = times[other] // step
        close_at = (other_order[0] + 1) * step if other_order else _LAST
        latest = times[side]
        results: list[JoinResult] = []
        for i in range(start, n):
            message = messages[i]
            key = message.key
            raw_value = message.value
            if key is None or raw_value is None:
                drops[name] += 1
                continue
            ts = message.timestamp
            own_time = latest
            # what this record changes, as it was before (see flush): needed only if
            # it gives results, as a commit can come only while the agent holds them
            undo: dict[Any, Any] | None = None
            if ts > own_time:
                times[side] = latest = ts
                if ts >= close_at:
                    undo = {}
                    self._close(held, other, ts, results, undo, keyed)
                    close_at = (other_order[0] + 1) * step if other_order else _LAST
            elif ts + grace < own_time:
                drops[name] += 1        # late: its own side has moved on
                continue
            found = cache.get(key, _ABSENT)
            if found is _ABSENT:
                # (_read, inline for a key first seen)
                found = self._read(held, key) if key in stored else _FRESH
            if found is _DELETED or found is _FRESH:
                entries: tuple[Any, ...] = ()
                joined = 0
            else:
                entries, joined = self._pair(key, side, ts, values[i], found, results,
                                             keyed)
            bucket = (ts + reach) // step
            if bucket < other_bucket:
                # its window closed already (the other topic is read ahead of this
                # one): it joined what it could, nothing can come for it any more.
                # (Decided by bucket, as Closing decides for buffered records, so that
                # which records come out does not depend on which topic was read first.)
                if joined:
                    undo = {} if undo is None else undo
                    self._keep(held, key, entries, undo, found)  # the records it joined
                elif given:
                    pair = (values[i], None) if side == LEFT else (None, values[i])
                    results.append((key, pair) if keyed else pair)
            else:
                # (_keep, inline: once per record)
                if results:
                    undo = {} if undo is None else undo
                    undo.setdefault(key, found)
                # (no (*entries, entry): that builds a list on the way)
                entry = (ts, side, joined, raw_value)
                cache[key] = entries + (entry,) if entries else (entry,)
                dirty.add(key)
                keys = own_buckets.get(bucket)     # (own_closing.add, inline)
                if keys is None:
                    own_closing.open(bucket, key)
                else:
                    keys.append(key)
            if results:
                # the agent gets results: until it is done with them, a commit writes
                # what this record changed as it was before, stream times too
                undo = {} if undo is None else undo
                undo[side] = own_time
                undo[other] = times[other]
                in_flight[partition] = undo
                if len(dirty) >= dirty_limit:
                    self._check_dirty()
                return i, results
        # (checked once a call, not once a record: a batch more at most)
        if len(dirty) >= dirty_limit:
            self._check_dirty()
        return n, results

    def settle(self, batch: RecordBatch) -> None:
        """The agent is done with the results the last record ``take`` stopped at in
        ``batch`` gave (without a ``take`` of the records after it): a commit may
        write what it changed."""
        self._in_flight.pop(batch.tp.partition, None)

    def _hold(self, partition: int) -> Held | None:
        """What ``take`` needs of ``partition``, gathered (None: given up)."""
        if partition not in self._cache and self._given_up(partition):
            return None
        if partition not in self._time:
            self._index(partition)
        held = self._held[partition] = Held(
            partition, self._stores.get(partition), self._cache_of(partition),
            self._dirty[partition], self._stored[partition],
            self._time[partition], self._closing[partition])
        held.sides = (self._side_view(held, LEFT), self._side_view(held, RIGHT))
        return held

    def _side_view(self, held: Held, side: int) -> tuple[Any, ...]:
        """What ``take`` unpacks for a batch of ``side`` in ``held``'s partition."""
        other = 1 - side
        own_closing = held.closing[side]
        return (side, other, held.times, held.cache, held.dirty, held.stored,
                own_closing, own_closing.buckets, held.closing[other].order, self._step,
                self.grace_ms, self._reach[side], self._dirty_limit,
                self._unjoined_given[side], self._drops, self.name)

    def _forget_hot(self) -> None:
        super()._forget_hot()
        self._held.clear()

    def _read(self, held: Held, key: bytes) -> Any:
        """A key not in the cache: its buffered records from the store, or ``_FRESH``
        (none; then, if it closes before the next commit, nothing of it is ever
        written: see ``_close``)."""
        stored = held.stored
        if key in stored and held.store is not None:
            raw = held.store.get(held.partition, _KEY + key)
            if raw is not None:
                return self.value_serde.loads(raw)
        # not in the store (nor dirty: a changed key is always in the cache)
        stored.discard(key)
        return _FRESH

    def _keep(self, held: Held, key: bytes, entries: Any, undo: dict[bytes, Any],
              before: Any) -> None:
        """Write ``key``'s buffered records (those a record closed on arrival joined),
        remembering in ``undo`` what it held before the record in flight
        (``before``); ``take`` checks the changed keys against the cache's bound."""
        undo.setdefault(key, before)
        held.cache[key] = entries
        held.dirty.add(key)

    def _pair(self, raw_key: bytes, side: int, ts: int, value: Any,
              entries: tuple[Any, ...], results: list[JoinResult], keyed: bool
              ) -> tuple[tuple[Any, ...], int]:
        """Add the pairs a record of ``side`` at ``ts`` makes with the other side's
        buffered records, in their timestamp order; returns the buffered records
        with those marked joined (a new tuple: the old one may be written by a commit
        yet, see ``flush``), and 1 if it made any pair."""
        if side == LEFT:
            low, high = ts - self.before_ms, ts + self.after_ms
        else:
            low, high = ts - self.after_ms, ts + self.before_ms
        other = 1 - side
        if len(entries) == 1:
            # one buffered record (the most common case), with no lists
            entry = entries[0]
            if entry[1] != other or not low <= entry[0] <= high:
                return entries, 0
            found = self._load[other](entry[3])
            pair = (value, found) if side == LEFT else (found, value)
            results.append((raw_key, pair) if keyed else pair)
            return (entry if entry[2] else (entry[0], other, 1, entry[3]),), 1
        matches = []
        marked = []
        for entry in entries:
            if entry[1] == other and low <= entry[0] <= high:
                matches.append(entry)
                if not entry[2]:
                    entry = (entry[0], other, 1, entry[3])
            marked.append(entry)
        if not matches:
            return entries, 0
        if len(matches) > 1:
            matches.sort(key=_timestamp)
        load = self._load[other]
        for entry in matches:
            found = load(entry[3])
            pair = (value, found) if side == LEFT else (found, value)
            results.append((raw_key, pair) if keyed else pair)
        return tuple(marked), 1

    def _close(self, held: Held, side: int, now: int, results: list[JoinResult],
               undo: dict[bytes, Any], keyed: bool) -> None:
        """Drop the records of ``side`` in a partition whose window closed before
        ``now`` (the other side's stream time), giving those that never joined when
        the kind of join says so, oldest first."""
        keys = held.closing[side].take(now)
        unjoined: list[tuple[int, int, bytes, Any]] = []
        #: a record of ``side`` before this closed (its ts + reach < now)
        cutoff = now - self._reach[side]
        given = self._unjoined_given[side]
        cache, dirty, stored = held.cache, held.dirty, held.stored
        remember = undo.setdefault
        kept: list[Any] | None
        for key in keys:
            entries = cache.get(key, _ABSENT)
            if entries is _ABSENT:
                entries = self._read(held, key)
            if entries is _DELETED or entries is _FRESH:
                continue
            if len(entries) == 1:
                # a key's last record (the most common case), with no list
                entry = entries[0]
                if entry[1] != side or entry[0] >= cutoff:
                    continue
                if given and not entry[2]:
                    unjoined.append((entry[0], len(unjoined), key, entry[3]))
                kept = None
            else:
                kept = []
                for entry in entries:
                    if entry[1] != side or entry[0] >= cutoff:
                        kept.append(entry)
                    elif given and not entry[2]:
                        unjoined.append((entry[0], len(unjoined), key, entry[3]))
                if len(kept) == len(entries):
                    continue
            # (_keep, inline: once per record closed)
            remember(key, entries)
            if kept:
                cache[key] = tuple(kept)
                dirty.add(key)
            elif key not in stored:     # came and went since the last commit: forgotten
                dirty.discard(key)
                del cache[key]
            else:
                cache[key] = _DELETED
                dirty.add(key)
        if len(dirty) >= self._dirty_limit:
            self._check_dirty()
        unjoined.sort()
        load = self._load[side]
        for _ts, _n, raw_key, raw in unjoined:
            value = load(raw)
            pair = (value, None) if side == LEFT else (None, value)
            results.append((raw_key, pair) if keyed else pair)

    # -- stream time and closing times, per partition ------------------------------------
    def _index(self, partition: int) -> list[int]:
        """Read the stream times of ``partition`` and rebuild its closing times from
        the buffer (restored, or still empty); returns the stream times."""
        times = [_NEVER, _NEVER]
        closing = (Closing(self._step), Closing(self._step))
        reach = self._reach
        stored = self._stored[partition] = set()
        for key, entries in self._partition_items(partition):
            if type(key) is int:
                times[key] = entries
                continue
            stored.add(key)
            for entry in entries:
                side = entry[1]
                closing[side].add(entry[0] + reach[side], key)
        self._dirty_limit = max(self.cache_size // 2, 1)
        self._closing[partition] = closing
        self._time[partition] = times
        return times

    def flush(self) -> None:
        """Commit like any table, with each side's stream time (under the keys 0 and
        1), as of the records the agents are done with: for a record whose results
        are still in hand, its keys are written as they were before it (the commit's
        offsets do not include it yet: after a crash it is read again, and must find
        the records it closed), and what it changed is written at the next commit."""
        in_flight = self._in_flight
        changed_since = []
        for partition, undo in in_flight.items():
            cache = self._cache.get(partition)
            if cache is None:
                continue
            dirty = self._dirty[partition]
            for key, before in undo.items():
                if type(key) is int:
                    continue            # a stream time (below)
                changed_since.append((partition, key, before, cache.get(key, _ABSENT)))
                if before is _FRESH:
                    dirty.discard(key)
                else:
                    cache[key] = before
                    dirty.add(key)
        for partition, times in self._time.items():
            if partition in self._cache:
                cache = self._cache[partition]
                written = in_flight.get(partition, times)
                for side in (LEFT, RIGHT):
                    if cache.get(side) != written[side] and written[side] != _NEVER:
                        self._write_at(partition, side, written[side])
        super().flush()
        # the keys just written are in the stores from the commit on: ``_stored``
        # may hold more keys than the stores, never fewer, so they count from now
        for partition, flushed in self._flushed_keys.items():
            stored = self._stored.get(partition)
            if stored is not None:
                stored |= flushed
        for partition, key, before, now in changed_since:
            cache = self._cache[partition]
            if now is _ABSENT:          # came and went (see _close)
                if before is _FRESH:
                    continue
                now = _DELETED          # in the store from this commit: a tombstone
            # (a key that was _FRESH before stays out of the store's keys: unwritten)
            cache[key] = now
            self._dirty[partition].add(key)

    # -- keys: a record's key bytes, or a side -------------------------------------------
    def _dump_key(self, key: Any) -> bytes:
        """A record key's bytes after b"k" (no key then starts with the zero byte of
        the store's own bookkeeping); a side's stream time under b"t0" or b"t1"."""
        return _KEY + key if type(key) is bytes else b"t%d" % key

    def load_key(self, raw: bytes) -> Any:
        return raw[1:] if raw[:1] == _KEY else int(raw[1:])

    def restore(self, partition: int) -> int:
        applied = super().restore(partition)
        self._index(partition)
        return applied

    def on_partitions_revoked(self, tps: list[TopicPartition],
                              assigned: set[TopicPartition] | None = None) -> None:
        super().on_partitions_revoked(tps, assigned)
        for partition in list(self._time):
            if partition not in self._active:
                del self._time[partition]
                self._closing.pop(partition, None)
                self._stored.pop(partition, None)
                self._in_flight.pop(partition, None)

    def apply_flushed(self) -> None:
        """Keep ``_stored`` as the stores: less the keys deleted (those written were
        added at ``flush``), unless written again since."""
        for partition, keys in self._deleted_keys.items():
            stored, cache = self._stored.get(partition), self._cache.get(partition)
            if stored is None or cache is None:
                continue
            for key in keys:
                if cache.get(key, _ABSENT) is _DELETED:
                    stored.discard(key)
        super().apply_flushed()

    def discard_uncommitted(self) -> None:
        """exactly_once, after an abort: the buffers go back to the last commit, so
        stream times and closing times are read again from them."""
        super().discard_uncommitted()
        self._time.clear()
        self._closing.clear()
        self._in_flight.clear()

    def close(self) -> None:
        super().close()
        self._time.clear()
        self._closing.clear()
        self._stored.clear()
        self._in_flight.clear()

    # -- partitions: the topics' ----------------------------------------------------------
    def open(self, source_partitions: int = 0) -> None:
        """Check that the two topics are co-partitioned, then open with their
        partition count."""
        broker = self.context.broker()
        left = broker.partition_count(self.left_topic)
        right = broker.partition_count(self.right_topic)
        if left is not None and right is not None and left != right:
            raise ImproperlyConfigured(
                f"stream-stream join {self.name!r}: topic {self.left_topic!r} has {left} "
                f"partitions and {self.right_topic!r} has {right}; the two topics of a "
                "join must be co-partitioned (the same partition count, keyed alike)")
        count = left or right
        if self.partitions is None and count is not None:
            self.partitions = count
        super().open(source_partitions)
        if count is not None and self.partition_count() != count:
            raise ImproperlyConfigured(
                f"stream-stream join {self.name!r}: its changelog "
                f"{self.changelog_topic!r} has {self.partition_count()} partitions and "
                f"its topics {count}; delete the join's changelog (streamkit reset) or "
                "give the topics their former partition count")


def _timestamp(entry: list[Any]) -> int:
    return entry[0]
