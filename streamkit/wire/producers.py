"""The idempotent producer's ids and sequence numbers, kept in memory by the server.

Kafka clients since Kafka 3.0 (kafka-python 3 among them) are idempotent by default:
they ask InitProducerId for an id, and number each partition's batches from 0 so that
the broker can drop a batch sent again after a lost response. This server keeps the
last few batches of each (producer, partition) in memory, answers a batch sent again
with the offset it was written at, and refuses a gap in the numbers with
OUT_OF_ORDER_SEQUENCE_NUMBER, as Kafka does. The numbers are not kept across restarts
(decision 908): after one, a producer's next batch is taken as it comes.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode

from streamkit.types import TopicPartition

__all__ = ["APPEND", "GAP", "ProducerState", "Sequenced"]

#: the batches remembered per producer and partition (Kafka keeps 5: a client has at
#: most 5 requests in flight)
REMEMBERED = 5
#: the (producer, partition) pairs remembered; the least recently written is dropped
#: beyond it (Kafka expires a producer's state after producer.id.expiration.ms)
MAX_PAIRS = 100_000
#: ``ProducerState.check``'s answers but a duplicate's offset
APPEND = "append"
GAP = "gap"


@dataclass(frozen=True, slots=True)
class Sequenced:
    """One appended batch: its first and last sequence numbers and first offset."""

    first: int
    last: int
    base_offset: int


@dataclass(slots=True)
class _Partition:
    epoch: int
    batches: deque[Sequenced] = field(default_factory=lambda: deque(maxlen=REMEMBERED))


class ProducerState:
    """Producer ids handed out, and the last batches of each producer per partition."""

    def __init__(self) -> None:
        # ids from the clock, so that ids handed out before a restart are not reused
        self._next_id = time.time_ns() // 1_000_000
        self._partitions: dict[tuple[int, TopicPartition], _Partition] = {}

    def new_id(self) -> int:
        """A producer id not handed out before by this server."""
        self._next_id += 1
        return self._next_id

    def check(self, producer_id: int, epoch: int, tp: TopicPartition, first: int,
              count: int) -> int | str:
        """The offset a batch sent again was written at; ``APPEND`` to append it;
        ``GAP`` for a gap in the sequence numbers."""
        state = self._partitions.get((producer_id, tp))
        if state is None or epoch != state.epoch or not state.batches:
            return APPEND
        last = first + count - 1
        for batch in state.batches:
            if (batch.first, batch.last) == (first, last):
                return batch.base_offset
        return APPEND if first == (state.batches[-1].last + 1) % 2**31 else GAP

    def answer_if_seen(self, producer_id: int, epoch: int, tp: TopicPartition, first: int,
                       count: int) -> tuple[ErrorCode, str | None, int] | None:
        """The Produce answer (error, message, first offset) to a batch sent before
        (where it went) or out of order; None for a new batch, to append."""
        seen = self.check(producer_id, epoch, tp, first, count)
        if isinstance(seen, int):
            return ErrorCode.none, None, seen            # sent again: where it went
        if seen == GAP:
            return ErrorCode.out_of_order_sequence_number, None, -1
        return None

    def appended(self, producer_id: int, epoch: int, tp: TopicPartition, first: int,
                 count: int, base_offset: int) -> None:
        """Note an appended batch."""
        state = self._partitions.pop((producer_id, tp), None)
        if state is None or state.epoch != epoch:
            state = _Partition(epoch)
        self._partitions[(producer_id, tp)] = state      # (the most recent, last)
        if len(self._partitions) > MAX_PAIRS:
            del self._partitions[next(iter(self._partitions))]
        state.batches.append(Sequenced(first, first + count - 1, base_offset))
