"""Kafka transactions: the outputs of a batch and the input offsets it consumed become
visible together, or not at all. The worker's ``processing_guarantee="exactly_once"``
and a ``streamkit.Producer(transactional_id=...)`` on ``kafka://`` both use them.

Used through ``KafkaBroker.transactional_producer(transactional_id)``::

    tx = broker.transactional_producer("taxi-0")     # fences an older "taxi-0"
    tx.begin()
    tx.send("rides.high_amount", records)
    tx.send_offsets(consumer, {tp: next_offset})
    tx.commit()          # or tx.abort()

librdkafka's errors become streamkit's: ``ProducerFenced`` once a newer producer took
the id (librdkafka's fatal ``_FENCED``; every later call raises it again),
``TransactionAborted`` when the transaction had to be rolled back (it is, at once),
``InvalidTxnState`` for a call librdkafka refuses in the state it is in.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka import TopicPartition as KTP

from streamkit import errors
from streamkit.transport.kafka_common import KafkaConfig, broker_error, make_client
from streamkit.transport.kafka_consumer import KafkaGroupConsumer
from streamkit.types import OutgoingRecord, RecordMetadata, TopicPartition

T = TypeVar("T")
#: ``KafkaBroker._deliver``: send records with a producer, wait for their metadata.
Deliver = Callable[[Producer, str, Sequence[OutgoingRecord]], list[RecordMetadata]]

#: (kept for the worker's imports) Kafka aborted the transaction: redo the batch
TransactionAborted = errors.TransactionAborted

#: librdkafka's codes for "a newer producer took this transactional id"
_FENCED_CODES = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
           KafkaError.INVALID_PRODUCER_EPOCH}


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
        #: the fatal error that ended this producer (fenced): every call raises it
        self._dead: errors.BrokerError | None = None
        self._call(lambda: self._producer.init_transactions(timeout), "init transactions")

    def _call(self, op: Callable[[], T], what: str) -> T:
        if self._dead is not None:
            raise self._dead
        try:
            return op()
        except KafkaException as exc:
            raise self._error(exc, what) from None
        except SystemError as exc:
            # confluent-kafka raises a fatal error from flush()/poll() and then runs
            # the delivery callbacks with it still set: Python reports a SystemError
            # whose cause is librdkafka's error
            if isinstance(exc.__cause__, KafkaException):
                raise self._error(exc.__cause__, what) from None
            raise

    def _error(self, exc: KafkaException, what: str) -> errors.BrokerError:
        """streamkit's error for librdkafka's; rolls back a transaction that must be."""
        err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        where = f"{what} of transactional id {self.transactional_id!r}"
        if err is None:
            return broker_error(exc, where, self._servers)
        if err.code() in _FENCED_CODES:
            self._dead = errors.ProducerFenced(
                f"{where}: a newer producer with this transactional id took over on "
                f"{self._servers} ({err.str()}); close this one")
            self._in_transaction = False
            return self._dead
        if err.txn_requires_abort():
            self._abort_quietly()
            return TransactionAborted(f"{where} on {self._servers}: {err.str()}; the "
                                      "transaction was aborted")
        if err.code() == KafkaError._STATE:
            return errors.InvalidTxnState(f"{where}: {err.str()}")
        error = broker_error(exc, where, self._servers)
        if err.fatal():
            self._dead = error
            self._in_transaction = False
        return error

    def _abort_quietly(self) -> None:
        try:
            self._producer.abort_transaction(self._timeout)
        except KafkaException:
            pass
        self._in_transaction = False

    def begin(self) -> None:
        """Start a transaction."""
        if self._in_transaction:
            raise errors.InvalidTxnState(f"transactional id {self.transactional_id!r}: "
                                         "a transaction is already open")
        self._call(self._producer.begin_transaction, "begin transaction")
        self._in_transaction = True

    def send(self, topic: str, records: Sequence[OutgoingRecord]) -> list[RecordMetadata]:
        """Write records inside the open transaction; they stay invisible to
        read_committed consumers until ``commit``."""
        if not self._in_transaction:
            raise errors.InvalidTxnState(f"transactional id {self.transactional_id!r}: "
                                         "send outside a transaction (call begin() first)")
        self._ensure_topic(topic)
        return self._call(lambda: self._deliver(self._producer, topic, records),
                          f"send to {topic!r}")

    def send_offsets(self, consumer: KafkaGroupConsumer,
                     offsets: dict[TopicPartition, int]) -> None:
        """Commit ``offsets`` of ``consumer``'s group as part of the transaction."""
        self.send_group_offsets(consumer.group_metadata(), offsets)

    # Kafka's own name for it.
    send_offsets_to_transaction = send_offsets

    def send_group_offsets(self, group_metadata: object,
                           offsets: dict[TopicPartition, int]) -> None:
        """Commit ``offsets`` of the group ``group_metadata`` names (librdkafka's
        opaque metadata: a member's, or ``KafkaBroker.group_metadata``'s for a group
        id alone) as part of the transaction."""
        parts = [KTP(tp.topic, tp.partition, off) for tp, off in offsets.items()]
        self._call(lambda: self._producer.send_offsets_to_transaction(
            parts, group_metadata, self._timeout), "send offsets")

    def commit(self) -> None:
        """Make the transaction's records and offsets visible, atomically."""
        self._call(lambda: self._producer.commit_transaction(self._timeout),
                   "commit transaction")
        self._in_transaction = False

    def abort(self) -> None:
        """Roll the open transaction back (nothing to do if librdkafka's error already
        made this producer roll it back)."""
        if self._dead is None and not self._in_transaction:
            return
        self._call(lambda: self._producer.abort_transaction(self._timeout),
                   "abort transaction")
        self._in_transaction = False

    def close(self) -> None:
        """Abort an open transaction and free the producer."""
        if self._dead is not None:
            # a fenced producer delivers nothing more: drop what it still holds
            self._producer.purge()
            return
        if self._in_transaction:
            self._abort_quietly()
        self._producer.flush(self._timeout)
