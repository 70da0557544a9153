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
  a record that is not late always finds every record it can join still buffered.

A pair is given as soon as its second record arrives. Entries are ``[timestamp ms,
side, joined, value bytes]``: the value as it came from the topic, decoded with its
side's types only when it joins. Keys are the records' key bytes (equal keys are
equal bytes, as in Kafka), held as latin-1 strings so that the table's JSON key
encoding carries any bytes; the stream times are kept under the keys 0 and 1 (JSON
numbers, never equal to a string key).

The table is committed, changelogged and restored like any other, so a restarted
worker goes on with the same buffers and stream times; the closing times are rebuilt
from the buffer when a partition is restored.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable, MutableMapping
from typing import Any

from streamkit.errors import ImproperlyConfigured
from streamkit.tables.context import TableContext
from streamkit.tables.table import _DELETED, Table
from streamkit.types import Message, TopicPartition

LEFT = 0
RIGHT = 1
#: stream time of a partition nothing has been seen on
_NEVER = -(1 << 62)

#: one result: the key bytes, the left value, the right value
JoinResult = tuple[bytes, Any, Any]


class WindowJoinBuffer(Table):
    """See the module docstring. Made by the app for an agent over a
    ``TopicJoin``."""

    def __init__(self, name: str, *, context: TableContext, left_topic: str,
                 right_topic: str, load_left: Callable[[bytes], Any],
                 load_right: Callable[[bytes], Any], before_ms: int, after_ms: int,
                 grace_ms: int, how: str, drops: MutableMapping[str, int],
                 partitions: int | None = None) -> None:
        super().__init__(name, context=context, value_serializer="msgpack",
                         partitions=partitions,
                         help=f"window buffers of the {how} join of {left_topic} "
                              f"and {right_topic}")
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
        #: the keys 0 and 1), and (closing time, key) of every buffered record of each
        #: side, earliest first
        self._time: dict[int, list[int]] = {}
        self._closing: dict[int, list[list[tuple[int, str]]]] = {}

    def __repr__(self) -> str:
        return (f"<WindowJoinBuffer {self.name}: {self.left_topic} {self.how} "
                f"{self.right_topic}>")

    # -- joining -------------------------------------------------------------------------
    def process(self, message: Message, value: Any) -> list[JoinResult]:
        """Take one record of either topic (``value`` decoded); returns the results it
        gives, in order: the other side's records whose window it closed, then its
        own pairs."""
        if message.key is None or message.value is None:
            self._drops[self.name] += 1
            return []
        partition = message.partition
        side = RIGHT if message.topic == self.right_topic else LEFT
        ts = message.timestamp
        times = self._time.get(partition)
        if times is None:
            times = self._index(partition)
        results: list[JoinResult] = []
        if ts > times[side]:
            times[side] = ts
            self._write_at(partition, side, ts)
            waiting = self._closing[partition][1 - side]
            if waiting and waiting[0][0] < ts:
                self._close(partition, 1 - side, ts, results)
        elif ts + self.grace_ms < times[side]:
            self._drops[self.name] += 1        # late: its own side has moved on
            return results
        key = message.key.decode("latin-1")
        found = self._lookup(partition, key)
        entries: list[list[Any]] = [] if found is _DELETED else found
        joined = 0
        if entries:
            joined = self._pair(message.key, side, ts, value, entries, results)
        entries.append([ts, side, joined, message.value])
        self._write_at(partition, key, entries)
        heapq.heappush(self._closing[partition][side], (ts + self._reach[side], key))
        return results

    def _pair(self, raw_key: bytes, side: int, ts: int, value: Any,
              entries: list[list[Any]], results: list[JoinResult]) -> int:
        """Add the pairs a record of ``side`` at ``ts`` makes with the other side's
        buffered records, in their timestamp order; returns 1 if it made any."""
        if side == LEFT:
            low, high = ts - self.before_ms, ts + self.after_ms
        else:
            low, high = ts - self.after_ms, ts + self.before_ms
        other = 1 - side
        matches = [entry for entry in entries
                   if entry[1] == other and low <= entry[0] <= high]
        if not matches:
            return 0
        matches.sort(key=_timestamp)
        load = self._load[other]
        for entry in matches:
            entry[2] = 1
            found = load(entry[3])
            results.append((raw_key, value, found) if side == LEFT
                           else (raw_key, found, value))
        return 1

    def _close(self, partition: int, side: int, now: int, results: list[JoinResult]
               ) -> None:
        """Drop the records of ``side`` in ``partition`` whose window closed before
        ``now`` (the other side's stream time), giving those that never joined when
        the kind of join says so, oldest first."""
        waiting = self._closing[partition][side]
        keys: dict[str, None] = {}
        while waiting and waiting[0][0] < now:
            keys[heapq.heappop(waiting)[1]] = None
        unjoined: list[tuple[int, int, bytes, Any]] = []
        reach = self._reach[side]
        given = self._unjoined_given[side]
        for key in keys:
            entries = self._lookup(partition, key)
            if entries is _DELETED:
                continue
            kept = []
            for entry in entries:
                ts, entry_side, joined, raw = entry
                if entry_side != side or ts + reach >= now:
                    kept.append(entry)
                elif given and not joined:
                    unjoined.append((ts, len(unjoined), key.encode("latin-1"), raw))
            if len(kept) != len(entries):
                self._write_at(partition, key, kept or _DELETED)
        unjoined.sort()
        load = self._load[side]
        for _ts, _n, raw_key, raw in unjoined:
            value = load(raw)
            results.append((raw_key, value, None) if side == LEFT
                           else (raw_key, None, value))

    # -- stream time and closing times, per partition ------------------------------------
    def _index(self, partition: int) -> list[int]:
        """Read the stream times of ``partition`` and rebuild its closing times from
        the buffer (restored, or still empty); returns the stream times."""
        times = [_NEVER, _NEVER]
        closing: list[list[tuple[int, str]]] = [[], []]
        reach = self._reach
        for key, entries in self._partition_items(partition):
            if type(key) is int:
                times[key] = entries
                continue
            for entry in entries:
                side = entry[1]
                closing[side].append((entry[0] + reach[side], key))
        for waiting in closing:
            heapq.heapify(waiting)
        self._closing[partition] = closing
        self._time[partition] = times
        return times

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

    def close(self) -> None:
        super().close()
        self._time.clear()
        self._closing.clear()

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
