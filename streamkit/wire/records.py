"""Produce, Fetch, ListOffsets and InitProducerId: records in and out of the log.

Produce appends each partition's batches (``batches``) to the log; Fetch reads from an
offset, writing the log's messages as uncompressed v2 batches, and waits for an append
(long polling) when there is nothing to return yet; ListOffsets answers a partition's
first and next offsets, or the first offset at or after a time; InitProducerId gives
idempotent producers their ids (``producers``).
"""
from __future__ import annotations

import time
from typing import Any, Literal

import anyio
from kio.schema.errors import ErrorCode

from streamkit.errors import BrokerError
from streamkit.log.watch import AppendWatch
from streamkit.names import is_topic_name
from streamkit.transport.base import WatchedBroker
from streamkit.types import TopicPartition
from streamkit.wire.apis import (FETCH, INIT_PRODUCER_ID, LIST_OFFSETS, NO_THROTTLE,
                                 PRODUCE, Node, build, nested)
from streamkit.wire.batches import (CONTROL_BATCH_SIZE, BatchError, ProducedBatch,
                                    encode_batches, encode_control_batch, read_batches)
from streamkit.wire.protocol import Request, response_type
from streamkit.wire.transactions import (TransactionalBroker, append_transactional,
                                         init_transactional_producer)

__all__ = ["RECORD_HANDLERS", "AppendWaiter", "can_sync", "fetch", "list_offsets",
           "produce"]

EARLIEST = -2
LATEST = -1
#: Fetch's isolation_level of a read_committed consumer (0: read_uncommitted)
READ_COMMITTED = 1
#: messages read from the log at a time while filling a fetch response
_CHUNK = 500
#: how often a fetch looks at a log that no watch covers (a broker without appends
#: to watch)
_POLL_SECONDS = 0.05


def _exists(node: Node, tp: TopicPartition) -> bool:
    """Whether the log has partition ``tp`` (a name the log refuses: it has not)."""
    if not is_topic_name(tp.topic):
        return False
    count = node.broker.partition_count(tp.topic)
    return count is not None and 0 <= tp.partition < count


# -- Produce ----------------------------------------------------------------------------
def produce(node: Node, request: Request, durable: set[TopicPartition] | None = None
            ) -> Any:
    """Append each partition's batches; None for ``acks=0`` (Kafka sends no response).

    ``acks=-1`` ("all") is to be answered once the records are fsynced, as a log://
    producer's ``acks="all"`` (the log is the only copy); 0 and 1 once they are
    written. Given ``durable``, and a broker that can ``sync`` later, the records are
    only written and their partitions added to ``durable``: the caller syncs them
    before it answers (one fsync for several requests, decision 931)."""
    cls = response_type(PRODUCE, request.api_version)
    part_cls = nested(cls, "PartitionProduceResponse")
    topic_cls = nested(cls, "TopicProduceResponse")
    acks: Literal[1, "all"] = "all" if request.body.acks == -1 else 1
    if acks == "all" and durable is not None and can_sync(node.broker):
        acks = 1
    else:
        durable = None
    responses = []
    for topic in request.body.topic_data:
        parts = []
        for data in topic.partition_data:
            error, message, base = _produce_partition(node, topic.name, data.index,
                                                      data.records, acks,
                                                      request.body.transactional_id)
            start = -1
            if error is ErrorCode.none:
                tp = TopicPartition(topic.name, data.index)
                start = node.broker.offsets(tp)[0]
                if durable is not None:
                    durable.add(tp)
            parts.append(build(part_cls, index=data.index, error_code=error,
                               base_offset=base, log_append_time=None,
                               log_start_offset=start, record_errors=(),
                               error_message=message))
        responses.append(build(topic_cls, name=topic.name, partition_responses=tuple(parts)))
    if request.body.acks == 0:
        return None
    return build(cls, responses=tuple(responses), throttle_time=NO_THROTTLE)


def can_sync(broker: object) -> bool:
    """Whether ``broker`` makes records written with ``acks=1`` durable when asked
    (``sync``: the embedded log)."""
    return callable(getattr(broker, "sync", None))


def _produce_partition(node: Node, topic: str, partition: int, data: bytes | None,
                       acks: Literal[1, "all"], transactional_id: str | None = None
                       ) -> tuple[ErrorCode, str | None, int]:
    """(error, message, base offset) of appending one partition's record set
    (``transactional_id``: the request's, for transactional batches)."""
    if not _exists(node, TopicPartition(topic, partition)):
        # Kafka creates topics on Metadata only (and only with auto-create on)
        return ErrorCode.unknown_topic_or_partition, None, -1
    tp = TopicPartition(topic, partition)
    try:
        batches = list(read_batches(data or b"", partition))   # all checked first
    except BatchError as exc:
        return ErrorCode(exc.code), str(exc), -1
    base = -1
    for batch in batches:
        if batch.transactional and not batch.control:
            error, message, offset = append_transactional(node, tp, batch,
                                                          transactional_id)
        else:
            error, message, offset = _append(node, tp, batch, acks)
        if error is not ErrorCode.none:
            return error, message, -1
        base = offset if base == -1 else base
    return ErrorCode.none, None, base if base != -1 else node.broker.offsets(tp)[1]


def _append(node: Node, tp: TopicPartition, batch: ProducedBatch,
            acks: Literal[1, "all"]) -> tuple[ErrorCode, str | None, int]:
    """Append one batch, unless its idempotent producer sent it already."""
    if batch.control:
        # (markers are the transaction coordinator's to write, as in Kafka)
        return ErrorCode.invalid_record, "a control batch from a client", -1
    idempotent = batch.producer_id >= 0 and batch.base_sequence >= 0
    if idempotent:
        answer = node.producers.answer_if_seen(batch.producer_id, batch.producer_epoch,
                                               tp, batch.base_sequence, len(batch.records))
        if answer is not None:
            return answer
    if not batch.records:
        return ErrorCode.none, None, -1
    try:
        written = node.broker.produce(tp.topic, batch.records, acks=acks)
    except BrokerError as exc:
        return ErrorCode.unknown_server_error, str(exc), -1
    if idempotent:
        node.producers.appended(batch.producer_id, batch.producer_epoch, tp,
                                batch.base_sequence, len(batch.records), written[0].offset)
    return ErrorCode.none, None, written[0].offset


# -- InitProducerId ---------------------------------------------------------------------
def init_producer_id(node: Node, request: Request) -> Any:
    """A new producer id, epoch 0, for an idempotent producer; a transactional one
    gets its id's producer id and a new epoch from the log's transaction coordinator
    (``transactions``)."""
    cls = response_type(INIT_PRODUCER_ID, request.api_version)
    if request.body.transactional_id is not None:
        return init_transactional_producer(node, request)
    return build(cls, throttle_time=NO_THROTTLE, error_code=ErrorCode.none,
                 producer_id=node.producers.new_id(), producer_epoch=0)


# -- Fetch ------------------------------------------------------------------------------
class AppendWaiter:
    """One connection's wait for appends to the partitions it fetches (decision 111's
    watch, waited on in the event loop, without a thread). The watch is opened at the
    first fetch: a connection that only looks up metadata or produces holds no
    inotify instance (a user has 128 by default)."""

    def __init__(self, node: Node) -> None:
        self._broker = node.broker
        self._watch: AppendWatch | None = None

    def arm(self, tps: list[TopicPartition]) -> None:
        """Watch ``tps`` and take the events so far: call before reading the log."""
        if self._watch is None and isinstance(self._broker, WatchedBroker):
            self._watch = self._broker.append_watch()
        if self._watch is not None:
            self._watch.watch(tps)
            self._watch.clear()

    async def wait(self, seconds: float) -> None:
        """Until an append to a watched partition may have happened, or ``seconds``."""
        watch = self._watch
        fd = watch.fileno() if watch is not None else None
        if watch is None or fd is None:
            step = watch.max_wait if watch is not None else _POLL_SECONDS
            await anyio.sleep(min(seconds, step))
            return
        with anyio.move_on_after(min(seconds, watch.max_wait)):
            await anyio.wait_readable(fd)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None


async def fetch(node: Node, request: Request, waiter: AppendWaiter) -> Any:
    """Records of each partition from its offset; when fewer than ``min_bytes`` are
    there, wait up to ``max_wait`` for appends before answering."""
    body = request.body
    deadline = time.monotonic() + body.max_wait.total_seconds()
    tps = [TopicPartition(t.topic, p.partition) for t in body.topics for p in t.partitions]
    while True:
        waiter.arm(tps)
        response, size, errors = _fetch_once(node, request)
        remaining = deadline - time.monotonic()
        if size >= body.min_bytes or errors or remaining <= 0:
            return response
        await waiter.wait(remaining)


def _fetch_once(node: Node, request: Request) -> tuple[Any, int, bool]:
    """(the response, its records' size, whether a partition has an error)."""
    cls = response_type(FETCH, request.api_version)
    part_cls = nested(cls, "PartitionData")
    topic_cls = nested(cls, "FetchableTopicResponse")
    room = max(request.body.max_bytes, 0)
    committed = getattr(request.body, "isolation_level", 0) == READ_COMMITTED
    size = 0
    errors = False
    topics = []
    for topic in request.body.topics:
        parts = []
        for asked in topic.partitions:
            tp = TopicPartition(topic.topic, asked.partition)
            error, data, marks = _read_partition(node, tp, asked.fetch_offset,
                                                 min(asked.partition_max_bytes, room - size),
                                                 at_least_one=size == 0,
                                                 committed=committed)
            errors = errors or error is not ErrorCode.none
            size += len(data)
            high, start, stable = marks
            parts.append(build(part_cls, partition_index=asked.partition, error_code=error,
                               high_watermark=high, last_stable_offset=stable,
                               log_start_offset=start, aborted_transactions=(),
                               preferred_read_replica=-1, records=data))
        topics.append(build(topic_cls, topic=topic.topic, partitions=tuple(parts)))
    response = build(cls, throttle_time=NO_THROTTLE, error_code=ErrorCode.none,
                     session_id=0, responses=tuple(topics))
    return response, size, errors


def _read_partition(node: Node, tp: TopicPartition, offset: int, max_bytes: int,
                    at_least_one: bool, committed: bool = False
                    ) -> tuple[ErrorCode, bytes, tuple[int, int, int]]:
    """(error, batches, (high watermark, log start, last stable offset)) of one
    partition from ``offset``. ``committed`` (read_committed): only records of
    committed transactions (and of none), up to the last stable offset; the log
    filters them (decision 961). Offsets that hold nothing the reader may see up to
    where it may read (markers, aborted records) end with a control batch over them,
    so that the client moves past them as past Kafka's markers."""
    broker = node.broker
    if not _exists(node, tp):
        return ErrorCode.unknown_topic_or_partition, b"", (-1, -1, -1)
    start, end = broker.offsets(tp)
    # (a read_uncommitted client has no use for the LSO: it reads up to the end, and
    # is answered without the transaction index, as before there were transactions)
    stable = broker.last_stable_offset(tp) \
        if committed and isinstance(broker, TransactionalBroker) else end
    if not start <= offset <= end:
        return ErrorCode.offset_out_of_range, b"", (end, start, stable)
    readable = stable if committed else end
    isolation = "read_committed" if committed else "read_uncommitted"
    out = bytearray()
    while offset < readable and (max_bytes > len(out) or (at_least_one and not out)):
        messages = broker.fetch(tp, offset, max_records=_CHUNK, isolation_level=isolation)
        if committed and messages and messages[-1].offset >= readable:
            # (a transaction ended since ``stable`` was read: the next fetch has them)
            messages = [m for m in messages if m.offset < readable]
        if not messages:
            if max_bytes - len(out) >= CONTROL_BATCH_SIZE or (at_least_one and not out):
                out += encode_control_batch(offset, readable - 1)
            break
        data, used = encode_batches(messages, max_bytes - len(out),
                                    at_least_one=at_least_one and not out)
        if not used:
            break
        out += data
        offset = messages[used - 1].offset + 1
        if used < len(messages):
            break                                     # full
    return ErrorCode.none, bytes(out), (end, start, stable)


# -- ListOffsets ------------------------------------------------------------------------
def list_offsets(node: Node, request: Request) -> Any:
    """Each partition's earliest (-2) or latest (-1) offset, or the first offset whose
    record's timestamp is at or after the one asked for (-1 when none is). The latest
    offset of a read_committed client (v2+) is the last stable offset, as in Kafka."""
    cls = response_type(LIST_OFFSETS, request.api_version)
    committed = getattr(request.body, "isolation_level", 0) == READ_COMMITTED
    part_cls = nested(cls, "ListOffsetsPartitionResponse")
    topic_cls = nested(cls, "ListOffsetsTopicResponse")
    topics = []
    for topic in request.body.topics:
        parts = []
        for asked in topic.partitions:
            error, offset, timestamp = _list_offset(
                node, TopicPartition(topic.name, asked.partition_index), asked.timestamp,
                committed)
            parts.append(build(part_cls, partition_index=asked.partition_index,
                               error_code=error, timestamp=timestamp, offset=offset,
                               leader_epoch=0 if error is ErrorCode.none else -1))
        topics.append(build(topic_cls, name=topic.name, partitions=tuple(parts)))
    return build(cls, throttle_time=NO_THROTTLE, topics=tuple(topics))


def _list_offset(node: Node, tp: TopicPartition, timestamp: int, committed: bool
                 ) -> tuple[ErrorCode, int, int]:
    broker = node.broker
    if not _exists(node, tp):
        return ErrorCode.unknown_topic_or_partition, -1, -1
    start, end = broker.offsets(tp)
    if timestamp == EARLIEST:
        return ErrorCode.none, start, -1
    if timestamp == LATEST:
        if committed and isinstance(broker, TransactionalBroker):
            return ErrorCode.none, broker.last_stable_offset(tp), -1
        return ErrorCode.none, end, -1
    if timestamp < 0:
        return ErrorCode.invalid_request, -1, -1      # -3 (max timestamp) and others
    found = broker.offset_for_time(tp, timestamp)
    if found is None:
        return ErrorCode.none, -1, -1
    return ErrorCode.none, found.offset, found.timestamp


#: the synchronous handlers of this module, by api key (Fetch waits: ``fetch``)
RECORD_HANDLERS = {PRODUCE: produce, LIST_OFFSETS: list_offsets,
                   INIT_PRODUCER_ID: init_producer_id}
