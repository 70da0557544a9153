"""Partitions a ``Consumer`` reads without being a member of a consumer group.

Two cases, both kafka-python's: a consumer without ``group_id`` subscribed to topics
(it reads every partition of them), and a consumer whose partitions were named with
``assign()``. Positions start at the group's committed offset (with a ``group_id``)
or at ``auto_offset_reset``; commits go to the group without joining it
(``Broker.commit_offsets``), as a Kafka consumer with manual assignment commits.
"""
from __future__ import annotations

import time
from collections.abc import Iterable

from streamkit.errors import CorruptRecord, InvalidConfig
from streamkit.log.watch import AppendWatch
from streamkit.transport.base import Broker, WatchedBroker
from streamkit.types import Message, TopicPartition

__all__ = ["ManualAssignment"]


class ManualAssignment:
    """Reads the given partitions, with no group membership (GroupConsumer's calls)."""

    def __init__(self, broker: Broker, partitions: Iterable[TopicPartition], reset: str,
                 group_id: str | None = None,
                 isolation_level: str = "read_uncommitted") -> None:
        self._broker = broker
        self._isolation_level = isolation_level
        self._group_id = group_id
        self._positions: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        #: woken by appends where the broker can tell (decision 111), else a back-off;
        #: set up at the first wait
        self._watched = broker if isinstance(broker, WatchedBroker) else None
        self._watch: AppendWatch | None = None
        committed = self._committed_offsets()
        for tp in partitions:
            position = committed.get(tp)
            if position is None:
                start, end = broker.offsets(tp)
                position = start if reset == "earliest" else end
            self._positions[tp] = position

    def _committed_offsets(self) -> dict[TopicPartition, int]:
        if self._group_id is None:
            return {}
        return {TopicPartition(g.topic, g.partition): g.committed
                for g in self._broker.group_offsets(self._group_id)
                if g.committed is not None}

    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    def poll(self, max_records: int, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        backoff = 0.001
        while True:
            out = self._read(max_records)
            remaining = deadline - time.monotonic()
            if out or remaining <= 0:
                return out
            watch = self._watch
            if watch is None and self._watched is not None:
                watch = self._watch = self._watched.append_watch()
            if watch is None:
                time.sleep(min(backoff, remaining))
                backoff = min(backoff * 2, 0.02)
                continue
            # the watch is cleared before each read after a wait: an append that ends
            # between the read and the wait still wakes this one
            if not watch.watch([tp for tp in self._positions if tp not in self._paused]):
                watch.wait(remaining)
            watch.clear()

    def _read(self, max_records: int) -> list[Message]:
        out: list[Message] = []
        damage: CorruptRecord | None = None
        for tp, position in self._positions.items():
            if tp in self._paused:
                continue
            try:
                messages = self._broker.fetch(tp, position, max_records - len(out),
                                              isolation_level=self._isolation_level)
            except CorruptRecord as exc:
                damage = damage or exc   # the others first; raised once they are dry
                continue
            if messages:
                self._positions[tp] = messages[-1].offset + 1
                out.extend(messages)
                if len(out) >= max_records:
                    break
        if damage is not None and not out:
            raise damage
        return out

    def position(self, tp: TopicPartition) -> int:
        return self._positions[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self._positions:
            raise KeyError(f"{tp.topic}[{tp.partition}] is not assigned")
        self._positions[tp] = offset

    def pause(self, tps: Iterable[TopicPartition]) -> None:
        self._paused.update(tps)

    def resume(self, tps: Iterable[TopicPartition]) -> None:
        self._paused.difference_update(tps)

    def committed(self, tp: TopicPartition) -> int | None:
        return self._committed_offsets().get(tp)

    def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        if self._group_id is None:
            raise InvalidConfig("commit needs a Consumer with a group_id")
        offsets = dict(self._positions) if offsets is None else offsets
        if offsets:
            self._broker.commit_offsets(self._group_id, offsets)

    def close(self, commit: bool = True) -> None:
        if commit and self._group_id is not None:
            self.commit()
        if self._watch is not None:
            self._watch.close()
