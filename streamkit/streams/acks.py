"""Manual acknowledgement: ``stream.noack()`` and ``stream.ack(event)``.

A stream normally counts an event as done when the agent asks for the next one. Events
that pass through a ``noack()`` layer are *pending* instead until acknowledged
(``await stream.ack(event)`` or ``event.ack()``); ``tee(n)`` uses the same record with
``n`` acknowledgements per event, one from each branch. The stream's ``positions()``
(what the one ``Committer`` commits) never passes the first pending event of a
partition: as in Kafka, one offset is committed per partition, so events acknowledged
after an unacknowledged one are read again after a restart (decision 020).
"""
from __future__ import annotations

from collections import deque

from streamkit.types import TopicPartition


class PendingAcks:
    """Offsets handed to a manual-ack layer and not yet acknowledged, per partition."""

    __slots__ = ("_order", "_remaining")

    def __init__(self) -> None:
        #: per partition, pending offsets in the order they were handed out
        self._order: dict[TopicPartition, deque[int]] = {}
        #: acknowledgements still needed, per (partition, offset)
        self._remaining: dict[tuple[TopicPartition, int], int] = {}

    def __len__(self) -> int:
        return len(self._remaining)

    def add(self, tp: TopicPartition, offset: int, acks: int = 1) -> None:
        """``offset`` of ``tp`` waits for ``acks`` acknowledgements (added to those it
        waits for already: two layers over one event each need theirs)."""
        key = (tp, offset)
        remaining = self._remaining.get(key)
        if remaining is None:
            self._order.setdefault(tp, deque()).append(offset)
            self._remaining[key] = acks
        else:
            self._remaining[key] = remaining + acks

    def ack(self, tp: TopicPartition, offset: int) -> bool:
        """One acknowledgement of ``offset``; True when it was the last one it needed
        (False also for an offset not pending: acknowledging twice changes nothing)."""
        key = (tp, offset)
        remaining = self._remaining.get(key)
        if remaining is None:
            return False
        if remaining > 1:
            self._remaining[key] = remaining - 1
            return False
        del self._remaining[key]
        order = self._order[tp]
        while order and (tp, order[0]) not in self._remaining:
            order.popleft()
        return True

    def settle(self, tp: TopicPartition, offset: int) -> None:
        """Count ``offset`` as acknowledged by everyone (its agent raised on it:
        decision 001 skips such an event)."""
        while self._remaining.get((tp, offset)) is not None:
            self.ack(tp, offset)

    def first(self) -> dict[TopicPartition, int]:
        """Per partition with pending offsets, the first of them."""
        return {tp: order[0] for tp, order in self._order.items() if order}

    def drop(self, tps: set[TopicPartition]) -> None:
        """Forget the partitions given up on a rebalance."""
        for tp in tps:
            for offset in self._order.pop(tp, ()):
                self._remaining.pop((tp, offset), None)
