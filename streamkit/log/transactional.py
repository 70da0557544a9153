"""``LogTransaction``: a transactional producer on the embedded log (the
``Transaction`` protocol of ``streamkit.transport.base``), over the coordinator of
``streamkit.log.transactions``::

    tx = broker.transactional_producer("taxi-0")     # fences an older "taxi-0"
    tx.begin()
    tx.send("rides.high_amount", records)
    tx.send_offsets(consumer, {tp: next_offset})      # or add_offsets(group, ...)
    tx.commit()                                       # or tx.abort()
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from streamkit.errors import InvalidTxnState, ProducerFenced
from streamkit.types import OutgoingRecord, RecordMetadata, TopicPartition

if TYPE_CHECKING:
    from streamkit.log.broker import LogBroker


class LogTransaction:
    """One transactional id's producer: one open transaction at a time."""

    def __init__(self, broker: LogBroker, transactional_id: str, timeout_ms: int) -> None:
        self.transactional_id = transactional_id
        self._broker = broker
        self._coordinator = broker.transactions()
        #: (producer id, epoch) this producer holds
        self.producer = self._coordinator.init_producer(transactional_id, timeout_ms)
        self._open = False
        #: partitions the open transaction has told the coordinator of
        self._enlisted: set[TopicPartition] = set()

    def _need_open(self, what: str) -> None:
        if not self._open:
            raise InvalidTxnState(f"transactional id {self.transactional_id!r}: {what} "
                                  "with no transaction open (call begin() first)")

    def begin(self) -> None:
        """Start a transaction."""
        if self._open:
            raise InvalidTxnState(f"transactional id {self.transactional_id!r}: a "
                                  "transaction is already open")
        self._open = True
        self._enlisted = set()

    def _enlist(self, tps: list[TopicPartition]) -> None:
        new = [tp for tp in tps if tp not in self._enlisted]
        if new:
            self._coordinator.add_partitions(self.transactional_id, self.producer, new)
            self._enlisted.update(new)

    def send(self, topic: str, records: Sequence[OutgoingRecord]) -> list[RecordMetadata]:
        """Write records inside the open transaction; read_committed readers see
        them once it commits, never if it aborts."""
        self._need_open("send")
        if not records:
            return []
        return self._broker.produce_transactional(topic, records, self.producer,
                                                  self._enlist)

    def add_offsets(self, group_id: str, offsets: dict[TopicPartition, int],
                    member_id: str = "") -> None:
        """Commit ``offsets`` (next offsets to read) of ``group_id`` with the
        transaction. With ``member_id``, the commit is refused unless that member
        still owns those partitions (zombie fencing)."""
        self._need_open("send offsets")
        if offsets:
            self._coordinator.add_offsets(self.transactional_id, self.producer, group_id,
                                          offsets, member_id)

    def send_offsets(self, consumer: Any, offsets: dict[TopicPartition, int]) -> None:
        """Commit ``offsets`` of ``consumer``'s group (a ``LogGroupConsumer`` of this
        log) with the transaction, fenced by its membership."""
        self.add_offsets(consumer.group_id, offsets, consumer.member_id)

    # Kafka's own name for it.
    send_offsets_to_transaction = send_offsets

    def commit(self) -> None:
        """Make the transaction's records and offsets visible together. Raises
        ``TransactionAborted`` if it was aborted instead (a zombie's), and
        ``ProducerFenced`` if a newer producer took the transactional id."""
        self._need_open("commit")
        self._open = False
        self._coordinator.end(self.transactional_id, self.producer, commit=True)

    def abort(self) -> None:
        """Roll the open transaction back: none of it becomes visible."""
        self._need_open("abort")
        self._open = False
        self._coordinator.end(self.transactional_id, self.producer, commit=False)

    def close(self) -> None:
        """Abort an open transaction (quietly if this producer was fenced)."""
        if self._open:
            self._open = False
            try:
                self._coordinator.end(self.transactional_id, self.producer, commit=False)
            except (InvalidTxnState, ProducerFenced):
                pass
