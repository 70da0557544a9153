"""Transactions over the protocol: InitProducerId with a transactional id,
AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn, and the transactional
batches of Produce, all on the log's own transaction coordinator
(``streamkit.log.transactions``, decision 960).

This node is the transaction coordinator of every transactional id, as it is the group
coordinator of every group. A transactional id's state lives where the log keeps it
(``<log>/__transactions``), so ``log://`` transactional producers and Kafka clients
with the same id fence each other. The coordinator's errors become Kafka's: a producer
whose epoch a newer one replaced gets PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before
the versions that know the newer code); a commit whose consuming member no longer owns
its partitions is aborted by the coordinator and answered ILLEGAL_GENERATION, an error
the client can abort after (librdkafka: ``txn_requires_abort``).
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import anyio
from kio.schema.errors import ErrorCode

from streamkit.errors import (BrokerError, InvalidConfig, InvalidTxnState,
                              ProducerFenced, TransactionAborted)
from streamkit.log.transactions import TransactionCoordinator
from streamkit.log.txnindex import Producer
from streamkit.names import is_topic_name
from streamkit.types import OutgoingRecord, RecordMetadata, TopicPartition
from streamkit.wire.apis import (ADD_OFFSETS_TO_TXN, ADD_PARTITIONS_TO_TXN, END_TXN,
                                 INIT_PRODUCER_ID, NO_THROTTLE, TXN_OFFSET_COMMIT, Node,
                                 build, nested)
from streamkit.wire.batches import ProducedBatch
from streamkit.wire.coordinator import GroupCoordinator
from streamkit.wire.protocol import Request, response_type

__all__ = ["EXPIRE_INTERVAL", "TXN_HANDLERS", "TransactionalBroker", "append_transactional",
           "expire_transactions", "init_transactional_producer", "serves_transactions"]

logger = logging.getLogger("streamkit.wire")

#: seconds between looks for transactions open past their timeout (Kafka's
#: ``transaction.abort.timed.out.transaction.cleanup.interval.ms`` is 10 s)
EXPIRE_INTERVAL = 1.0


@runtime_checkable
class TransactionalBroker(Protocol):
    """A broker with a transaction coordinator (``LogBroker``)."""

    def transactions(self) -> TransactionCoordinator: ...

    def produce_transactional(self, topic: str, records: Sequence[OutgoingRecord],
                              producer: Producer,
                              enlist: Callable[[list[TopicPartition]], None]
                              ) -> list[RecordMetadata]: ...

    def last_stable_offset(self, tp: TopicPartition) -> int: ...


def serves_transactions(node: Node) -> bool:
    """Whether this node's broker has a transaction coordinator."""
    return isinstance(node.broker, TransactionalBroker)


def _coordinator(node: Node) -> TransactionCoordinator:
    broker = node.broker
    assert isinstance(broker, TransactionalBroker)
    return broker.transactions()


def _fenced(request: Request, since: int) -> ErrorCode:
    """PRODUCER_FENCED from version ``since`` of the API on, INVALID_PRODUCER_EPOCH
    before it (KIP-588: older clients do not know the newer code)."""
    return ErrorCode.producer_fenced if request.api_version >= since \
        else ErrorCode.invalid_producer_epoch


def _exists(node: Node, tp: TopicPartition) -> bool:
    if not is_topic_name(tp.topic):
        return False
    count = node.broker.partition_count(tp.topic)
    return count is not None and 0 <= tp.partition < count


# -- InitProducerId ---------------------------------------------------------------------
def init_transactional_producer(node: Node, request: Request) -> Any:
    """The transactional id's producer id and a new epoch (fencing the previous
    holder, aborting what it left open). A client that names its current producer id
    and epoch (v3+, after an error that needs a new epoch) must still hold the id."""
    cls = response_type(INIT_PRODUCER_ID, request.api_version)
    body = request.body

    def answer(error: ErrorCode, producer: Producer = (-1, -1)) -> Any:
        return build(cls, throttle_time=NO_THROTTLE, error_code=error,
                     producer_id=producer[0], producer_epoch=producer[1])

    if not serves_transactions(node):
        return answer(ErrorCode.transactional_id_authorization_failed)
    coordinator = _coordinator(node)
    transactional_id = body.transactional_id
    if not transactional_id:
        return answer(ErrorCode.invalid_request)         # as Kafka: null or a name
    given = (getattr(body, "producer_id", -1), getattr(body, "producer_epoch", -1))
    if given[0] >= 0:
        state = coordinator.describe(transactional_id)
        if state is None or (state["producer_id"], state["epoch"]) != given:
            return answer(_fenced(request, 4))
    timeout_ms = int(body.transaction_timeout.total_seconds() * 1000)
    try:
        producer = coordinator.init_producer(transactional_id, timeout_ms)
    except InvalidTxnState as exc:
        logger.info("InitProducerId of %r refused: %s", transactional_id, exc)
        return answer(ErrorCode.invalid_transaction_timeout)
    except (BrokerError, OSError) as exc:
        logger.warning("InitProducerId of %r failed: %s", transactional_id, exc)
        return answer(ErrorCode.unknown_server_error)
    return answer(ErrorCode.none, producer)


# -- Produce ----------------------------------------------------------------------------
def append_transactional(node: Node, tp: TopicPartition, batch: ProducedBatch,
                         transactional_id: str | None) -> tuple[ErrorCode, str | None, int]:
    """Append one transactional batch inside its producer's open transaction (the
    log's index learns of it); (error, message, first offset)."""
    if not serves_transactions(node):
        return (ErrorCode.unsupported_for_message_format,
                "this broker's log has no transactions", -1)
    if not transactional_id:
        return (ErrorCode.invalid_txn_state,
                "a transactional batch in a Produce request without a transactional id",
                -1)
    producer = (batch.producer_id, batch.producer_epoch)
    answer = node.producers.answer_if_seen(batch.producer_id, batch.producer_epoch, tp,
                                           batch.base_sequence, len(batch.records))
    if answer is not None:
        return answer
    if not batch.records:
        return ErrorCode.none, None, -1
    broker = node.broker
    assert isinstance(broker, TransactionalBroker)
    coordinator = broker.transactions()

    def enlist(tps: list[TopicPartition]) -> None:
        # the coordinator must know the partition before the records are in it (to
        # end the transaction there); clients add it first (AddPartitionsToTxn), so
        # a look at the state mostly suffices
        state = coordinator.describe(transactional_id)
        if state is not None and state["state"] == "ongoing" and \
                (state["producer_id"], state["epoch"]) == producer and \
                all([tp.topic, tp.partition] in state["partitions"] for tp in tps):
            return
        coordinator.add_partitions(transactional_id, producer, tps)

    try:
        written = broker.produce_transactional(tp.topic, batch.records, producer, enlist)
    except ProducerFenced as exc:
        return ErrorCode.invalid_producer_epoch, str(exc), -1
    except InvalidTxnState as exc:
        return ErrorCode.invalid_txn_state, str(exc), -1
    except BrokerError as exc:
        return ErrorCode.unknown_server_error, str(exc), -1
    node.producers.appended(batch.producer_id, batch.producer_epoch, tp,
                            batch.base_sequence, len(batch.records), written[0].offset)
    return ErrorCode.none, None, written[0].offset


# -- AddPartitionsToTxn -----------------------------------------------------------------
async def add_partitions_to_txn(groups: GroupCoordinator, node: Node, request: Request,
                                peer: str) -> Any:
    """Partitions the open transaction is about to write to (v0-3, the clients'
    versions). Unknown partitions fail the request: the others get
    OPERATION_NOT_ATTEMPTED, as in Kafka."""
    cls = response_type(ADD_PARTITIONS_TO_TXN, request.api_version)
    body = request.body
    asked = [TopicPartition(t.name, p) for t in body.v3_and_below_topics
             for p in t.partitions]
    unknown = {tp for tp in asked if not _exists(node, tp)}
    error = ErrorCode.none
    if not serves_transactions(node):
        error = ErrorCode.coordinator_not_available
    elif not unknown:
        producer = (body.v3_and_below_producer_id, body.v3_and_below_producer_epoch)
        error = _call(_fenced(request, 2), lambda: _coordinator(node).add_partitions(
            body.v3_and_below_transactional_id, producer, asked))

    def code(tp: TopicPartition) -> ErrorCode:
        if unknown:
            return ErrorCode.unknown_topic_or_partition if tp in unknown \
                else ErrorCode.operation_not_attempted
        return error

    part_cls = nested(cls, "AddPartitionsToTxnPartitionResult")
    topic_cls = nested(cls, "AddPartitionsToTxnTopicResult")
    results = tuple(
        build(topic_cls, name=t.name, results_by_partition=tuple(
            build(part_cls, partition_index=p,
                  partition_error_code=code(TopicPartition(t.name, p)))
            for p in t.partitions))
        for t in body.v3_and_below_topics)
    return build(cls, throttle_time=NO_THROTTLE, results_by_topic_v3_and_below=results)


def _call(fenced: ErrorCode, call: Callable[[], None]) -> ErrorCode:
    """Kafka's error for what a coordinator call raised (NONE if it returned);
    ``fenced`` is the request's answer to a fenced producer."""
    try:
        call()
    except ProducerFenced as exc:
        logger.info("%s", exc)
        return fenced
    except TransactionAborted as exc:
        logger.info("%s", exc)
        return ErrorCode.illegal_generation
    except InvalidTxnState as exc:
        logger.info("%s", exc)
        return ErrorCode.invalid_txn_state
    except InvalidConfig as exc:                # a transactional or group id it refuses
        logger.info("%s", exc)
        return ErrorCode.invalid_request
    except (BrokerError, OSError) as exc:
        logger.warning("transaction request failed: %s", exc)
        return ErrorCode.unknown_server_error
    return ErrorCode.none


# -- AddOffsetsToTxn, TxnOffsetCommit ---------------------------------------------------
async def add_offsets_to_txn(groups: GroupCoordinator, node: Node, request: Request,
                             peer: str) -> Any:
    """The open transaction will commit offsets of a group (they come with
    TxnOffsetCommit): here only the producer's hold on its id is checked."""
    cls = response_type(ADD_OFFSETS_TO_TXN, request.api_version)
    body = request.body
    if not serves_transactions(node):
        error = ErrorCode.coordinator_not_available
    elif not body.group_id:
        error = ErrorCode.invalid_group_id
    else:
        producer = (body.producer_id, body.producer_epoch)
        error = _call(_fenced(request, 2), lambda: _coordinator(node).add_partitions(
            body.transactional_id, producer, []))
    return build(cls, throttle_time=NO_THROTTLE, error_code=error)


async def txn_offset_commit(groups: GroupCoordinator, node: Node, request: Request,
                            peer: str) -> Any:
    """Offsets of a group committed with the open transaction. With the consumer's
    group metadata (v3+: member id and generation), the member must be in that
    generation of the group now (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID), and at the
    commit still own the partitions (the coordinator's zombie fencing), as Kafka's
    KIP-447 fences a consumer whose partitions moved on."""
    cls = response_type(TXN_OFFSET_COMMIT, request.api_version)
    body = request.body
    member = getattr(body, "member_id", "") or ""
    generation = getattr(body, "generation_id", -1)
    offsets: dict[TopicPartition, int] = {}
    unknown: set[TopicPartition] = set()
    for topic in body.topics:
        for part in topic.partitions:
            tp = TopicPartition(topic.name, part.partition_index)
            if _exists(node, tp):
                offsets[tp] = part.committed_offset
            else:
                unknown.add(tp)
    if not serves_transactions(node):
        error = ErrorCode.coordinator_not_available
    elif not body.group_id:
        error = ErrorCode.invalid_group_id
    else:
        error = _txn_offsets(groups, node, body, member, generation, offsets)
    part_cls = nested(cls, "TxnOffsetCommitResponsePartition")
    topic_cls = nested(cls, "TxnOffsetCommitResponseTopic")
    topics = tuple(
        build(topic_cls, name=t.name, partitions=tuple(
            build(part_cls, partition_index=p.partition_index,
                  error_code=ErrorCode.unknown_topic_or_partition
                  if TopicPartition(t.name, p.partition_index) in unknown else error)
            for p in t.partitions))
        for t in body.topics)
    return build(cls, throttle_time=NO_THROTTLE, topics=topics)


def _txn_offsets(groups: GroupCoordinator, node: Node, body: Any, member: str,
                 generation: int, offsets: dict[TopicPartition, int]) -> ErrorCode:
    """Add ``offsets`` to the transaction, if the member may commit them now."""
    if member and generation >= 0:
        error = groups.check_commit(body.group_id, generation, member)
        if error is not ErrorCode.none:
            return error
    if not offsets:
        return ErrorCode.none
    group = groups.groups.get(body.group_id)
    # the coordinator checks ownership in the group store at the commit: where the
    # group's assignment is written there (a consumer group), and the assignor is
    # eager; a cooperative member commits the partitions it is giving up in its
    # revoke callback, after the new assignment without them was written (Kafka
    # checks only the generation, done above)
    cooperative = group is not None and "cooperative" in (group.protocol or "")
    owner = member if group is not None and group.shared and not cooperative else ""
    producer = (body.producer_id, body.producer_epoch)
    # (TxnOffsetCommit has no PRODUCER_FENCED version)
    return _call(ErrorCode.invalid_producer_epoch, lambda: _coordinator(node).add_offsets(
        body.transactional_id, producer, body.group_id, offsets, owner))


# -- EndTxn -----------------------------------------------------------------------------
async def end_txn(groups: GroupCoordinator, node: Node, request: Request, peer: str
                  ) -> Any:
    """Commit or abort the open transaction: markers into each partition it wrote to,
    then its group offsets (commit only), as the log's coordinator does for
    ``log://`` producers."""
    cls = response_type(END_TXN, request.api_version)
    body = request.body
    if not serves_transactions(node):
        error = ErrorCode.coordinator_not_available
    else:
        producer = (body.producer_id, body.producer_epoch)
        error = _call(_fenced(request, 2), lambda: _coordinator(node).end(
            body.transactional_id, producer, body.committed))
    return build(cls, throttle_time=NO_THROTTLE, error_code=error)


# -- timeouts ---------------------------------------------------------------------------
async def expire_transactions(broker: object) -> None:
    """Abort transactions open past their ``transaction.timeout.ms`` (their producer
    died or hangs), as Kafka's coordinator does, until cancelled."""
    if not isinstance(broker, TransactionalBroker):
        return
    coordinator = broker.transactions()
    while True:
        await anyio.sleep(EXPIRE_INTERVAL)
        try:
            done = coordinator.expire()
        except (BrokerError, OSError) as exc:
            logger.warning("aborting timed-out transactions failed: %s", exc)
            continue
        if done:
            logger.info("aborted or completed %d transaction(s) past their timeout", done)


TxnHandler = Callable[[GroupCoordinator, Node, Request, str], Awaitable[Any]]
#: the transactional APIs' handlers, by api key (called as the group APIs' are:
#: TxnOffsetCommit checks the group's generation)
TXN_HANDLERS: dict[int, TxnHandler] = {
    ADD_PARTITIONS_TO_TXN: add_partitions_to_txn,
    ADD_OFFSETS_TO_TXN: add_offsets_to_txn,
    TXN_OFFSET_COMMIT: txn_offset_commit,
    END_TXN: end_txn,
}
