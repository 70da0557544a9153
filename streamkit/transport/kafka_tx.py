"""Kafka transactions for ``processing_guarantee="exactly_once"``: the outputs of a
batch and the input offsets it consumed become visible together, or not at all.

Used through ``KafkaBroker.transactional_producer(transactional_id)``::

    tx = broker.transactional_producer("taxi-0")
    tx.begin()
    tx.send("rides.high_amount", records)
    tx.send_offsets(consumer, {tp: next_offset})
    tx.commit()          # or tx.abort()

Consumers read only committed records with librdkafka's default
``isolation.level=read_committed``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from confluent_kafka import KafkaException, Producer
from confluent_kafka import TopicPartition as KTP

from streamkit import errors
from streamkit.transport.kafka_common import KafkaConfig, broker_error, make_client
from streamkit.transport.kafka_consumer import KafkaGroupConsumer
from streamkit.types import OutgoingRecord, RecordMetadata, TopicPartition

T = TypeVar("T")
#: ``KafkaBroker._deliver``: send records with a producer, wait for their metadata.
Deliver = Callable[[Producer, str, Sequence[OutgoingRecord]], list[RecordMetadata]]


class TransactionAborted(errors.BrokerError):
    """Kafka aborted the transaction (it was rolled back); begin a new one and redo
    the batch."""


class KafkaTransactionalProducer:
    """A producer with a ``transactional.id``: one open transaction at a time."""

    def __init__(self, conf: KafkaConfig, transactional_id: str, servers: str,
                 timeout: float, deliver: Deliver,
                 ensure_topic: Callable[[str], None]) -> None:
        self.transactional_id = transactional_id
        self._servers = servers
        self._timeout = timeout
        self._deliver = deliver
        self._ensure_topic = ensure_topic
        self._producer = make_client(Producer, conf, "transactional producer")
        self._in_transaction = False
        self._call(lambda: self._producer.init_transactions(timeout), "init transactions")

    def _call(self, op: Callable[[], T], what: str) -> T:
        try:
            return op()
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            where = f"{what} of transactional id {self.transactional_id!r}"
            if err is not None and hasattr(err, "txn_requires_abort") \
                    and err.txn_requires_abort():
                self._abort_quietly()
                raise TransactionAborted(f"{where} on {self._servers}: {err.str()}; the "
                                         "transaction was aborted") from None
            raise broker_error(exc, where, self._servers) from None

    def _abort_quietly(self) -> None:
        try:
            self._producer.abort_transaction(self._timeout)
        except KafkaException:
            pass
        self._in_transaction = False

    def begin(self) -> None:
        """Start a transaction."""
        if self._in_transaction:
            raise errors.BrokerError(f"transactional id {self.transactional_id!r}: a "
                                     "transaction is already open")
        self._call(self._producer.begin_transaction, "begin transaction")
        self._in_transaction = True

    def send(self, topic: str, records: Sequence[OutgoingRecord]) -> list[RecordMetadata]:
        """Write records inside the open transaction; they stay invisible to
        read_committed consumers until ``commit``."""
        if not self._in_transaction:
            raise errors.BrokerError(f"transactional id {self.transactional_id!r}: send "
                                     "outside a transaction (call begin() first)")
        self._ensure_topic(topic)
        return self._deliver(self._producer, topic, records)

    def send_offsets(self, consumer: KafkaGroupConsumer,
                     offsets: dict[TopicPartition, int]) -> None:
        """Commit ``offsets`` of ``consumer``'s group as part of the transaction."""
        parts = [KTP(tp.topic, tp.partition, off) for tp, off in offsets.items()]
        self._call(lambda: self._producer.send_offsets_to_transaction(
            parts, consumer.group_metadata(), self._timeout), "send offsets")

    # Kafka's own name for it.
    send_offsets_to_transaction = send_offsets

    def commit(self) -> None:
        """Make the transaction's records and offsets visible, atomically."""
        self._call(lambda: self._producer.commit_transaction(self._timeout),
                   "commit transaction")
        self._in_transaction = False

    def abort(self) -> None:
        """Roll the open transaction back."""
        self._call(lambda: self._producer.abort_transaction(self._timeout),
                   "abort transaction")
        self._in_transaction = False

    def close(self) -> None:
        """Abort an open transaction and free the producer."""
        if self._in_transaction:
            self._abort_quietly()
        self._producer.flush(self._timeout)
