"""The transactions of a ``streamkit.Producer`` with a ``transactional_id``
(kafka-python / confluent-kafka names), on ``log://``, ``memory://`` and ``kafka://``.

``ProducerTransactions`` holds the broker's transactional producer of the id (the log's
``LogTransaction``, or on ``kafka://`` the transport's ``KafkaTransactionalProducer``,
librdkafka's transactions) and the state kafka-python's transaction manager keeps:
initialised or not, a transaction open or not. Sends go into the open transaction
through the producer's sender (its ``txn``); every call on the broker runs under the
sender's ``io_lock``, as the linger timer's writes do, so a broker is never used from
two threads at once.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from streamkit.consumer import ConsumerGroupMetadata
from streamkit.errors import (BrokerError, InvalidConfig, InvalidTxnState, ProducerFenced,
                              TransactionAborted)
from streamkit.log.broker import LogBroker
from streamkit.log.transactions import MAX_TIMEOUT_MS
from streamkit.transport.base import Broker
from streamkit.types import OffsetAndMetadata, OutgoingRecord, RecordMetadata, TopicPartition


class OpenTransaction(Protocol):
    """A broker's transactional producer of one id, as the Producer drives it (the
    log's ``LogTransaction``, ``kafka://``'s ``KafkaTransactionalProducer``)."""

    def begin(self) -> None: ...
    def send(self, topic: str, records: Sequence[OutgoingRecord]
             ) -> list[RecordMetadata]: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...
    def close(self) -> None: ...


class KafkaTransaction(OpenTransaction, Protocol):
    """``kafka://``'s transactional producer: offsets go with librdkafka's metadata."""

    def send_group_offsets(self, group_metadata: object,
                           offsets: dict[TopicPartition, int]) -> None: ...


@runtime_checkable
class KafkaTransactions(Protocol):
    """A ``kafka://`` broker (``KafkaBroker``), as far as transactions go; named so
    that a producer on the log does not import confluent-kafka."""

    def transactional_producer(self, transactional_id: str,
                               timeout_ms: int | None = None) -> KafkaTransaction: ...
    def group_metadata(self, group_id: str) -> object: ...


class Sender(Protocol):
    """What of ``streamkit.producer``'s sender the transactions use."""

    broker: Broker
    io_lock: threading.RLock
    transactional: bool
    txn: OpenTransaction | None
    txn_error: BaseException | None
    end_transaction: Callable[[], None] | None

    def flush(self, timeout: float | None) -> None: ...

#: what ``send_offsets_to_transaction`` takes: {TopicPartition: offset or
#: OffsetAndMetadata}, or confluent-kafka style objects with ``.topic .partition .offset``
Offsets = Mapping[TopicPartition, int | OffsetAndMetadata] | Iterable[Any]


def check_transactional(transactional_id: str | None, timeout_ms: int) -> None:
    """Refuse a bad ``transactional_id`` or ``transaction_timeout_ms`` (one line)."""
    if transactional_id is None:
        return
    if not isinstance(transactional_id, str) or not transactional_id:
        raise InvalidConfig(f"Producer transactional_id={transactional_id!r} must be a "
                            "non-empty string")
    if not isinstance(timeout_ms, int) or not 0 < timeout_ms <= MAX_TIMEOUT_MS:
        raise InvalidConfig(f"Producer transaction_timeout_ms={timeout_ms!r} must be a "
                            f"whole number of ms in 1..{MAX_TIMEOUT_MS}")


def has_transactions(broker: Broker) -> bool:
    """Whether a Producer on ``broker`` can be transactional (log://, memory://,
    kafka://)."""
    return isinstance(broker, (LogBroker, KafkaTransactions))


class ProducerTransactions:
    """One producer's transactional id: ``init``, ``begin``, ``send_offsets``,
    ``commit``, ``abort`` in the order Kafka allows (``InvalidTxnState`` otherwise)."""

    def __init__(self, sender: Sender, transactional_id: str, timeout_ms: int) -> None:
        self.transactional_id = transactional_id
        self._timeout_ms = timeout_ms
        self._sender = sender
        #: the broker's producer of the id, once ``init`` ran
        self._txn: OpenTransaction | None = None
        #: commits a group's offsets with the open transaction, as the broker takes them
        self._add_offsets: Callable[[ConsumerGroupMetadata, dict[TopicPartition, int]],
                                    None] | None = None
        #: the last commit failed and rolled the transaction back: the
        #: ``abort_transaction()`` a kafka-python loop calls next has nothing to do
        self._rolled_back = False
        sender.transactional = True
        sender.end_transaction = self._abort_at_close

    def init(self) -> None:
        """Take the id: an older holder is fenced, a transaction it left open aborted."""
        if self._txn is not None:
            raise InvalidTxnState(f"transactional id {self.transactional_id!r}: "
                                  "init_transactions was already called")
        sender = self._sender
        with sender.io_lock:
            broker = sender.broker
            if isinstance(broker, LogBroker):
                log_txn = broker.transactional_producer(self.transactional_id,
                                                        self._timeout_ms)
                self._txn = log_txn
                self._add_offsets = lambda group, numbers: log_txn.add_offsets(
                    group.group_id, numbers, group.member_id)
                return
            assert isinstance(broker, KafkaTransactions)    # (checked by the Producer)
            kafka_txn = broker.transactional_producer(self.transactional_id,
                                                      self._timeout_ms)
            self._txn = kafka_txn

            def add_offsets(group: ConsumerGroupMetadata,
                            numbers: dict[TopicPartition, int]) -> None:
                # librdkafka takes its own metadata: the member's, or (a group id
                # alone, a manually assigned consumer's) the group's without a member
                metadata = group.client_metadata
                if metadata is None:
                    metadata = broker.group_metadata(group.group_id)
                kafka_txn.send_group_offsets(metadata, numbers)
            self._add_offsets = add_offsets

    def _initialized(self, call: str) -> OpenTransaction:
        if self._txn is None:
            raise InvalidTxnState(f"{call}: call init_transactions() first")
        return self._txn

    def _open(self, call: str) -> OpenTransaction:
        txn = self._initialized(call)
        if self._sender.txn is None:
            raise InvalidTxnState(f"{call}: transactional id {self.transactional_id!r} "
                                  "has no transaction open (call begin_transaction())")
        return txn

    def begin(self) -> None:
        """Open a transaction: the sender's writes go into it."""
        txn = self._initialized("begin_transaction")
        sender = self._sender
        with sender.io_lock:
            if sender.txn is not None:
                raise InvalidTxnState(f"begin_transaction: transactional id "
                                      f"{self.transactional_id!r} already has one open")
            txn.begin()
            sender.txn, sender.txn_error = txn, None
            self._rolled_back = False

    def send_offsets(self, offsets: Offsets, group: str | ConsumerGroupMetadata) -> None:
        """Commit a group's ``offsets`` with the open transaction (fenced by the
        member when ``group`` is a Consumer's group metadata)."""
        self._open("send_offsets_to_transaction")
        if isinstance(group, str) and group:
            group = ConsumerGroupMetadata(group)
        elif not isinstance(group, ConsumerGroupMetadata):
            raise TypeError(f"send_offsets_to_transaction: group={group!r} must be a "
                            "group id or Consumer.consumer_group_metadata()")
        numbers = offset_numbers(offsets)
        assert self._add_offsets is not None        # (set with the transaction)
        with self._sender.io_lock:
            self._add_offsets(group, numbers)

    def commit(self, timeout: float | None) -> None:
        """Write what lingers into the transaction, then commit it (or, if a send of
        it failed, abort it and raise)."""
        txn = self._open("commit_transaction")
        sender = self._sender
        with sender.io_lock:
            sender.flush(timeout)
            error, sender.txn, sender.txn_error = sender.txn_error, None, None
            self._rolled_back = True        # (until the commit below succeeds)
            if error is not None:
                txn.abort()                 # (raises ProducerFenced if fenced)
                if isinstance(error, ProducerFenced):
                    raise error
                raise TransactionAborted(
                    f"commit_transaction: a send of transactional id "
                    f"{self.transactional_id!r} failed ({error}); the transaction was "
                    "aborted") from error
            try:
                txn.commit()
            except (ProducerFenced, TransactionAborted):
                raise
            except BrokerError as exc:
                # (kafka://: a commit that timed out or failed otherwise) roll back
                # now, as a failed send's commit does, so the producer goes on
                with contextlib.suppress(InvalidTxnState):      # (already rolled back)
                    txn.abort()
                raise TransactionAborted(
                    f"commit_transaction: transactional id {self.transactional_id!r} "
                    f"could not commit ({exc}); the transaction was aborted") from exc
            self._rolled_back = False

    def abort(self, timeout: float | None) -> None:
        """Write what lingers into the transaction, then roll it back; after a failed
        commit (already rolled back) do nothing."""
        txn = self._initialized("abort_transaction")
        sender = self._sender
        with sender.io_lock:
            if sender.txn is None and self._rolled_back:
                self._rolled_back = False
                return
            self._open("abort_transaction")
            try:
                sender.flush(timeout)
            finally:
                sender.txn, sender.txn_error = None, None
                txn.abort()

    def _abort_at_close(self) -> None:
        """(Under ``io_lock``, after the sender's last write) abort an open transaction."""
        if self._txn is not None:
            self._sender.txn = None
            self._txn.close()


def offset_numbers(offsets: Offsets) -> dict[TopicPartition, int]:
    """``send_offsets_to_transaction``'s offsets as {TopicPartition: next offset}."""
    if isinstance(offsets, Mapping):
        pairs = [(TopicPartition(*tp), o.offset if isinstance(o, OffsetAndMetadata) else o)
                 for tp, o in offsets.items()]
    else:
        items: Iterable[Any] = offsets
        pairs = [(TopicPartition(p.topic, p.partition), p.offset) for p in items]
    for tp, offset in pairs:
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(f"send_offsets_to_transaction: {tp.topic}[{tp.partition}] "
                             f"offset {offset!r} must be a whole number >= 0")
    return dict(pairs)
