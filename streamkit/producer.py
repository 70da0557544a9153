"""``streamkit.Producer``: kafka-python's ``KafkaProducer`` over any broker URL.

``send`` queues a record and returns a future. A linger timer thread (one per producer,
started at the first ``send``) writes what is queued ``linger_ms`` after the first
record came (5 ms by default, as librdkafka's ``linger.ms``); the ``send`` that fills a
batch (``batch_size`` records) writes it at once, and so does a ``send`` that finds the
linger passed (with acks other than all), which keeps a busy loop from waiting on the
timer thread's turn for the GIL. A write is one ``Broker.produce``
call per topic (records sent to an explicit partition: per topic and partition), then
the futures resolve. With ``acks="all"`` each partition of a batch is fsynced once, a
future resolves only after the fsync of its record, and the timer writes full batches
too, so ``send`` goes on queueing while the fsync runs. ``flush()``, ``future.get()``
and ``close()`` write at once; records still queued when the interpreter exits are
written then (``atexit``). Callbacks run in the thread that writes: keep them short.

A producer given a ``Broker`` object (not a URL) has no thread: that broker is the
caller's, and a broker is not safe to use from two threads. It writes in the threads
that call it, at once by default (``linger_ms=0``); with ``linger_ms > 0`` when
``batch_size`` records wait, when ``linger_ms`` has passed (checked on each ``send``),
or on ``flush``/``get``/``close``. See docs/clients.md and decision 110.

A producer with a ``transactional_id`` (``log://``, ``memory://``, ``kafka://``) writes
only inside a transaction: ``init_transactions()`` once, then ``begin_transaction()``,
sends, ``send_offsets_to_transaction(offsets, group)``, ``commit_transaction()`` (which
first writes what lingers) or ``abort_transaction()``. Its writes go through the
broker's transactional producer (``streamkit.producer_txn``).
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Unpack

from streamkit.client_metrics import Rates
from streamkit.consumer import ConsumerGroupMetadata
from streamkit.errors import InvalidConfig, InvalidTxnState, KafkaTimeoutError
from streamkit.log.transactions import DEFAULT_TIMEOUT_MS
from streamkit.producer_txn import (Offsets, OpenTransaction, ProducerTransactions,
                                    check_transactional, has_transactions)
from streamkit.transport import connect
from streamkit.transport.base import Acks, Broker
from streamkit.transport.options import (PRODUCER_OPTIONS, ProducerOptions, broker_config,
                                         check_names, choose_broker)
from streamkit.types import Headers, OutgoingRecord, RecordMetadata

log = logging.getLogger("streamkit.clients")

#: The user's function from a key or value to bytes.
Serializer = Callable[[Any], bytes]
#: A header value as ``send`` takes it: str is encoded as UTF-8.
HeaderValue = str | bytes | None

#: ``linger_ms`` of a producer that opens its own broker, as librdkafka's ``linger.ms``.
LINGER_MS = 5.0
#: With acks=all the timer writes full batches too, and ``send`` writes (and waits)
#: only once this many batches wait: the caller goes on queueing while an fsync runs,
#: and when fsyncs are slow (a busy disk) the timer's next write takes all that waits,
#: so more records share each fsync.
FSYNCS_IN_FLIGHT = 16
#: How often an idle timer thread looks whether its producer was dropped unclosed.
IDLE_CHECK_SECONDS = 1.0

_new = tuple.__new__
_monotonic = time.monotonic

__all__ = ["FutureRecordMetadata", "Producer"]


class _Batch:
    """Queued records of one topic, sent one after the other (to one explicit partition,
    or to none), written in one ``produce`` call; and what came of it: every future of
    them reads its record's metadata (or the error) here."""

    __slots__ = ("topic", "partition", "records", "sender", "metadata", "error",
                 "watchers", "seen")

    def __init__(self, topic: str, partition: int | None, sender: _Sender) -> None:
        self.topic = topic
        #: the explicit partition of every record of the batch, or None for none
        self.partition = partition
        self.records: list[OutgoingRecord] = []
        self.sender = sender
        self.metadata: Sequence[RecordMetadata] | None = None
        self.error: BaseException | None = None
        #: (record index, callback, errback) of futures that asked to be told
        self.watchers: list[tuple[int, Callable[[RecordMetadata], object] | None,
                                  Callable[[BaseException], object] | None]] = []
        #: whether anyone looked at the error (get/exception/an errback)
        self.seen = False

    def watch(self, index: int, callback: Callable[[RecordMetadata], object] | None,
              errback: Callable[[BaseException], object] | None) -> bool:
        """Call back when the batch is written; False if it already is (then the
        caller calls at once)."""
        with self.sender.lock:
            if self.metadata is None and self.error is None:
                self.watchers.append((index, callback, errback))
                return True
        return False

    def resolve(self, metadata: Sequence[RecordMetadata]) -> None:
        with self.sender.lock:
            self.metadata = metadata
            watchers, self.watchers = self.watchers, []
        for index, callback, _ in watchers:
            if callback is not None:
                _call(callback, metadata[index])

    def fail(self, error: BaseException) -> None:
        with self.sender.lock:
            self.error = error
            watchers, self.watchers = self.watchers, []
        for _, _, errback in watchers:
            if errback is not None:
                self.seen = True
                _call(errback, error)

    def __del__(self) -> None:
        # a failed send nobody asked about must not go unnoticed (as asyncio's
        # "exception was never retrieved"); one that get() raised is not logged again
        if self.error is not None and not self.seen:
            log.error("send failed (%d records to %r): %s", len(self.records), self.topic,
                      self.error)


def _call(fn: Callable[[Any], object], arg: object) -> None:
    """Run a user's callback; its error is logged, not raised into the writer."""
    try:
        fn(arg)
    except Exception:
        log.exception("producer callback %r failed", fn)


class FutureRecordMetadata:
    """The result of ``Producer.send``: ``get()`` returns the ``RecordMetadata``
    (``.topic .partition .offset .timestamp``) or raises the send's error."""

    __slots__ = ("_batch", "_index")

    def __init__(self, batch: _Batch, index: int) -> None:
        self._batch = batch
        self._index = index

    @property
    def is_done(self) -> bool:
        """True once the record was written (or failed)."""
        batch = self._batch
        return batch.metadata is not None or batch.error is not None

    @property
    def value(self) -> RecordMetadata | None:
        """The record's metadata once it was written, else None."""
        metadata = self._batch.metadata
        return None if metadata is None else metadata[self._index]

    def succeeded(self) -> bool:
        return self._batch.metadata is not None

    def failed(self) -> bool:
        return self._batch.error is not None

    def exception(self) -> BaseException | None:
        self._batch.seen = True
        return self._batch.error

    def get(self, timeout: float | None = None) -> RecordMetadata:
        """Write the record now if it still waits, then return its metadata."""
        batch = self._batch
        if batch.metadata is None and batch.error is None:
            batch.sender.flush(timeout)
        if batch.error is not None:
            batch.seen = True
            raise batch.error
        if batch.metadata is None:       # (flushed from one of its own callbacks)
            raise KafkaTimeoutError(f"record not sent within {timeout}s")
        return batch.metadata[self._index]

    def add_callback(self, fn: Callable[[RecordMetadata], object]) -> FutureRecordMetadata:
        """Call ``fn(metadata)`` once the record is written (at once if it is; else in
        the thread that writes it)."""
        if not self._batch.watch(self._index, fn, None):
            value = self.value
            if value is not None:
                fn(value)
        return self

    def add_errback(self, fn: Callable[[BaseException], object]) -> FutureRecordMetadata:
        """Call ``fn(error)`` if the send fails."""
        batch = self._batch
        if not batch.watch(self._index, None, fn) and batch.error is not None:
            batch.seen = True
            fn(batch.error)
        return self


class _Sender:
    """The records waiting to be written, and what writes them: Kafka's record
    accumulator and sender in one. ``lock`` guards the queue (taken for a moment by
    each ``send``); ``io_lock`` the broker, so writes go one at a time, in order."""

    def __init__(self, broker: Broker, owned: bool, acks: Acks, linger_ms: float,
                 batch_size: int, timer: bool, owner: Producer) -> None:
        self.broker = broker
        self.owned = owned
        self.acks = acks
        self.linger = linger_ms / 1000
        self.batch_size = batch_size
        self.timer = timer
        self.lock = threading.Lock()
        self.io_lock = threading.RLock()     # (re-entered by a flush from a callback)
        #: the batches to write, in order, and the one of each topic sends add to
        self.queue: list[_Batch] = []
        self.batches: dict[str, _Batch] = {}
        self.count = 0
        self.first_at = 0.0
        #: from how many waiting records on ``send`` calls ``queued`` (besides the
        #: first): with a timer, once a batch is full; without, each time
        self.due = batch_size if timer else 1
        #: with a timer and acks other than all, a ``send`` that finds the linger passed
        #: writes itself: the timer thread would first wait for the GIL the sending
        #: loop holds (up to the 5 ms switch interval, often more); with acks=all the
        #: timer writes, so the caller queues the next batch while the fsync runs
        self.write_late = timer and acks != "all"
        #: for ``Producer.metrics()``: records written, records failed, produce calls
        self.sent = self.failed = self.requests = 0
        #: a transactional producer's writes go into ``txn``, its open transaction
        #: (under ``io_lock``); with none open they fail, never write outside one
        self.transactional = False
        self.txn: OpenTransaction | None = None
        #: the first write of the open transaction that failed: its commit must not
        self.txn_error: BaseException | None = None
        #: (a transactional producer's) aborts the open transaction before an owned
        #: broker closes, whoever closes the sender (``close``, ``atexit``)
        self.end_transaction: Callable[[], None] | None = None
        self.closing = False
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.owner = weakref.ref(owner)
        _LIVE.add(self)

    def open_batch(self, topic: str, partition: int | None) -> _Batch:
        """(Under ``lock``) a new batch for ``topic``'s next records. Records sent to an
        explicit partition go in a batch of their own partition: a bad partition number
        then fails only them, and a partition's records still go in send order."""
        batch = self.batches[topic] = _Batch(topic, partition, self)
        self.queue.append(batch)
        return batch

    def queued(self, count: int) -> None:
        """``send`` queued the ``count``-th waiting record: wake the timer (the linger
        clock starts), or write now (a full batch; with no timer, linger has passed)."""
        if not self.timer:
            if count >= self.batch_size or self.linger <= 0 or \
                    _monotonic() - self.first_at >= self.linger:
                self.flush(None)
        elif count == 1:
            self._wake_timer()
        elif self.acks != "all" or count >= self.batch_size * FSYNCS_IN_FLIGHT:
            self.flush(None)
        elif count == self.batch_size:
            # with acks=all the timer writes it, and the caller queues the next batch
            # while the fsync runs; only when the writes fall behind does it wait
            self.wake.set()

    def _wake_timer(self) -> None:
        if self.thread is None:                 # the first send starts the thread
            with self.lock:
                thread = None
                if self.thread is None and not self.closing:
                    thread = self.thread = threading.Thread(
                        target=self.run, name="streamkit-producer", daemon=True)
            if thread is not None:
                thread.start()
        self.wake.set()

    def run(self) -> None:
        """The linger timer's thread: write what waits once ``linger_ms`` passed since
        its first record; end when the producer is closed, or was dropped without
        ``close()`` (then write what waits and close)."""
        wake = self.wake
        while not self.closing:
            with self.lock:
                count, first_at = self.count, self.first_at
            if count == 0:
                if self.owner() is None:
                    self.close(None)
                    return
                wake.wait(IDLE_CHECK_SECONDS)
                wake.clear()
            elif count < self.batch_size and first_at + self.linger > _monotonic():
                wake.wait(first_at + self.linger - _monotonic())
                wake.clear()        # (the queue is looked at again after this)
            else:
                try:
                    self.write(None)
                except Exception:
                    # (errors of a write go to the futures; this is anything else)
                    log.exception("the producer's linger timer could not write")

    def write(self, timeout: float | None) -> bool:
        """Write every queued record, one ``produce`` call per batch (in the order they
        were opened), and settle their futures. False if another write kept the broker
        past ``timeout``."""
        if not self.io_lock.acquire(timeout=-1 if timeout is None else timeout):
            return False
        try:
            with self.lock:
                batches, self.queue, self.batches, self.count = self.queue, [], {}, 0
            for batch in batches:
                self.requests += 1
                try:
                    if self.transactional:
                        metadata = self._send_in_transaction(batch)
                    else:
                        metadata = self.broker.produce(batch.topic, batch.records,
                                                       self.acks)
                except Exception as exc:                 # noqa: BLE001 - to the futures
                    self.failed += len(batch.records)
                    if self.txn is not None and self.txn_error is None:
                        self.txn_error = exc
                    batch.fail(exc)
                else:
                    self.sent += len(metadata)
                    batch.resolve(metadata)
            flush = getattr(self.broker, "flush", None)
            if flush is not None and self.acks == 0 and batches:
                flush()         # a broker that queues acks=0 records writes them now
        finally:
            self.io_lock.release()
        return True

    def _send_in_transaction(self, batch: _Batch) -> Sequence[RecordMetadata]:
        txn = self.txn
        if txn is None:     # (a send that raced with the commit or abort)
            raise InvalidTxnState(f"send to {batch.topic!r} with no transaction open "
                                  "(call begin_transaction() first)")
        return txn.send(batch.topic, batch.records)

    def flush(self, timeout: float | None) -> None:
        """Write everything queued before this call (what a write in progress took
        included); raises KafkaTimeoutError after ``timeout`` seconds."""
        if not self.write(timeout):
            raise KafkaTimeoutError(f"producer flush not done within {timeout}s")

    def close(self, timeout: float | None) -> None:
        """Stop the timer, write what waits, close an owned broker (once)."""
        with self.lock:
            if self.closing:
                return
            self.closing = True             # (send refuses records from now on)
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            self.wake.set()
            thread.join(timeout)
        try:
            self.flush(timeout)
            while self.count:               # (a send that passed its check meanwhile)
                self.flush(timeout)
        finally:
            if self.end_transaction is not None:
                try:
                    with self.io_lock:
                        self.end_transaction()
                except Exception:
                    log.exception("the open transaction could not be aborted at close")
            if self.owned:
                with self.io_lock:
                    self.broker.close()
            _LIVE.discard(self)


#: Every producer not yet closed (by its sender): what ``_close_at_exit`` writes.
_LIVE: weakref.WeakSet[_Sender] = weakref.WeakSet()


def _close_at_exit() -> None:
    """At interpreter exit (``atexit``), write what every open producer still queues."""
    for sender in list(_LIVE):
        try:
            sender.close(None)
        except Exception:
            log.exception("records queued in a producer at exit could not be written")


def _forget_after_fork() -> None:
    """In a child made by ``fork``: no thread of the parent runs here and its locks may
    be held for good, so each producer gets new ones and starts its own timer at its
    next ``send``. The records the parent queued are the parent's to write."""
    for sender in list(_LIVE):
        sender.lock = threading.Lock()
        sender.io_lock = threading.RLock()
        sender.wake = threading.Event()
        sender.thread = None
        sender.queue, sender.batches, sender.count = [], {}, 0


atexit.register(_close_at_exit)
os.register_at_fork(after_in_child=_forget_after_fork)


def _to_bytes(what: str, topic: str, data: object, serializer: Serializer | None
              ) -> bytes | None:
    if data is None:
        return None                           # None stays None: a tombstone / null key
    if serializer is not None:
        data = serializer(data)
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"send to {topic!r}: {what} is {type(data).__name__}, not bytes; "
                    f"pass {what}_serializer=")


def _headers(topic: str, headers: Iterable[tuple[str, HeaderValue]]) -> Headers:
    out: Headers = []
    for name, value in headers:
        if isinstance(value, str):
            value = value.encode()
        if not isinstance(name, str) or not isinstance(value, (bytes, type(None))):
            raise TypeError(f"send to {topic!r}: header {name!r} must be (str, bytes)")
        out.append((name, value))
    return out


class Producer:
    """Sends records to topics (auto-creating them with ``default_partitions``).

    ``linger_ms`` defaults to 5 for a producer that opens its broker from a URL, whose
    linger timer thread writes without waiting for the next ``send``; and to 0 (write
    at once, in the caller's thread) for one given a ``Broker`` object.

    kafka-python's ``KafkaProducer`` settings are taken too: ``bootstrap_servers`` opens
    ``kafka://<servers>``; ``client_id``, ``retries``, ``compression_type``,
    ``request_timeout_ms``, ``security_protocol``, ... become librdkafka settings on
    ``kafka://`` and have no effect on the embedded log (``streamkit.transport.options``,
    docs/clients.md).

    With ``transactional_id`` the producer is transactional (on ``log://``,
    ``memory://`` and ``kafka://``): see ``init_transactions``;
    ``transaction_timeout_ms`` is how long a transaction may stay open before the
    coordinator aborts it (Kafka's ``transaction.timeout.ms``)."""

    def __init__(self, broker: str | Broker | None = None, *,
                 bootstrap_servers: str | Sequence[str] | None = None,
                 value_serializer: Serializer | None = None,
                 key_serializer: Serializer | None = None, acks: int | str = 1,
                 linger_ms: float | None = None, batch_size: int = 1000,
                 datadir: str | Path = "stores", default_partitions: int = 1,
                 config: dict[str, Any] | None = None,
                 transactional_id: str | None = None,
                 transaction_timeout_ms: int = DEFAULT_TIMEOUT_MS,
                 **options: Unpack[ProducerOptions]) -> None:
        check_names("Producer", options, PRODUCER_OPTIONS)
        check_transactional(transactional_id, transaction_timeout_ms)
        broker = choose_broker("Producer", broker, bootstrap_servers)
        config = broker_config("Producer", "producer", broker, config, options)
        if acks in (-1, "-1"):
            acks = "all"
        if acks not in (0, 1, "all", "0", "1"):
            raise InvalidConfig(f"Producer acks={acks!r}: use 0, 1 or 'all'")
        if batch_size < 1:
            raise InvalidConfig(f"Producer batch_size={batch_size} must be >= 1")
        if linger_ms is not None and linger_ms < 0:
            raise InvalidConfig(f"Producer linger_ms={linger_ms} must be >= 0")
        self.acks: Acks = "all" if acks == "all" else 0 if int(acks) == 0 else 1
        self.batch_size = batch_size
        self._value_serializer = value_serializer
        self._key_serializer = key_serializer
        owned = isinstance(broker, str)
        if isinstance(broker, str):
            broker = connect(broker, datadir=datadir, default_partitions=default_partitions,
                             config=config)
        if linger_ms is None:
            linger_ms = LINGER_MS if owned else 0
        self.linger_ms = linger_ms
        if transactional_id is not None and not has_transactions(broker):
            if owned:
                broker.close()
            raise InvalidConfig(f"Producer transactional_id={transactional_id!r}: "
                                f"{broker!r} has no transactions (use log://, memory:// "
                                "or kafka://)")
        self._sender = _Sender(broker, owned, self.acks, linger_ms, batch_size,
                               timer=owned and linger_ms > 0, owner=self)
        self._rates = Rates("sent", "failed", "requests")
        self.transactional_id = transactional_id
        self._txns = None if transactional_id is None else ProducerTransactions(
            self._sender, transactional_id, transaction_timeout_ms)

    def send(self, topic: str, value: object = None, key: object = None,
             headers: Iterable[tuple[str, HeaderValue]] | None = None,
             partition: int | None = None,
             timestamp_ms: int | None = None) -> FutureRecordMetadata:
        """Queue one record; returns a future whose ``get()`` gives its metadata."""
        sender = self._sender
        if sender.closing:
            raise InvalidConfig("send on a closed Producer")
        if sender.transactional and sender.txn is None:
            raise InvalidTxnState(f"send to {topic!r}: transactional id "
                                  f"{self.transactional_id!r} has no transaction open "
                                  "(call begin_transaction() first)")
        # (bytes without a serializer, the common case, skip the call; the key goes
        # first, as kafka-python serializes it: a registry numbers schemas in that order)
        if key.__class__ is not bytes or self._key_serializer is not None:
            key = _to_bytes("key", topic, key, self._key_serializer)
        if value.__class__ is not bytes or self._value_serializer is not None:
            value = _to_bytes("value", topic, value, self._value_serializer)
        # (no headers is None, not a new [] per record: one object less to allocate,
        # and to hold while queued)
        record: OutgoingRecord = _new(OutgoingRecord, (
            key, value, None if headers is None else _headers(topic, headers),
            timestamp_ms, partition))
        # (the queue's hot path, inline: a few steps under the lock the timer takes
        # only to swap the queue out)
        with sender.lock:
            batch = sender.batches.get(topic)
            if batch is None or batch.partition != partition:
                batch = sender.open_batch(topic, partition)
            records = batch.records
            records.append(record)
            future = FutureRecordMetadata(batch, len(records) - 1)
            count = sender.count = sender.count + 1
            if count == 1:
                sender.first_at = _monotonic()      # the linger clock starts
        if count == 1 or count >= sender.due:
            sender.queued(count)
        elif sender.write_late and _monotonic() - sender.first_at >= sender.linger:
            sender.flush(None)
        return future

    # -- transactions (kafka-python / confluent-kafka names; streamkit.producer_txn) ---
    def _transactions(self, call: str) -> ProducerTransactions:
        if self._txns is None:
            raise InvalidTxnState(f"{call} on a Producer without a transactional_id")
        return self._txns

    def init_transactions(self, timeout: float | None = None) -> None:
        """Take ``transactional_id``: an older producer holding it is fenced (its
        sends and commits fail with ``ProducerFenced``) and a transaction it left open
        is aborted. Call once, before ``begin_transaction``. (``timeout`` is
        confluent-kafka's; on ``kafka://`` the broker's timeout bounds the call.)"""
        self._transactions("init_transactions").init()

    def begin_transaction(self) -> None:
        """Open a transaction: sends from now until the commit or abort go into it."""
        self._transactions("begin_transaction").begin()

    def send_offsets_to_transaction(self, offsets: Offsets,
                                    group: str | ConsumerGroupMetadata,
                                    timeout: float | None = None) -> None:
        """Commit ``offsets`` (the next offsets to read) of a consumer group with the
        open transaction: they count only if it commits. ``group`` is a group id
        (kafka-python) or a Consumer's ``consumer_group_metadata()`` (confluent-kafka):
        then the commit is refused if that member no longer owns the partitions.
        ``offsets`` may also be confluent-kafka style objects with ``.topic
        .partition .offset``. (``timeout`` is confluent-kafka's; not used.)"""
        self._transactions("send_offsets_to_transaction").send_offsets(offsets, group)

    def commit_transaction(self, timeout: float | None = None) -> None:
        """Write what lingers into the transaction, then commit it: its records and
        offsets become visible together. Raises ``ProducerFenced`` if a newer producer
        took the id, ``TransactionAborted`` if it was rolled back instead (a send of
        it failed, or its consumer's member was fenced); then ``abort_transaction()``
        is accepted and does nothing."""
        self._transactions("commit_transaction").commit(timeout)

    def abort_transaction(self, timeout: float | None = None) -> None:
        """Roll the open transaction back: read_committed readers never see its
        records, its offsets are not committed. Records still lingering are written
        into it first (and so rolled back too)."""
        self._transactions("abort_transaction").abort(timeout)

    def flush(self, timeout: float | None = None) -> None:
        """Write every queued record and resolve its future (errors go to futures);
        raises KafkaTimeoutError if that takes longer than ``timeout`` seconds."""
        self._sender.flush(timeout)

    def partitions_for(self, topic: str) -> set[int]:
        sender = self._sender
        with sender.io_lock:
            count = sender.broker.partition_count(topic)
        return set(range(count)) if count else set()

    def metrics(self, raw: bool = False) -> dict[str, dict[str, float]]:
        """Counts and rates shaped like kafka-python's ``metrics()`` (``raw`` is
        accepted and changes nothing): records written and failed, ``produce`` calls
        (one per batch of a topic) and records per call. Rates are per second over the
        last 30-60 s when called at least every 30 s."""
        sender, rates, now = self._sender, self._rates, _monotonic()
        sent, failed, requests = sender.sent, sender.failed, sender.requests
        return {"producer-metrics": {
            "record-send-total": sent,
            "record-send-rate": rates.of("sent", sent, now),
            "record-error-total": failed,
            "record-error-rate": rates.of("failed", failed, now),
            "request-total": requests,
            "request-rate": rates.of("requests", requests, now),
            "records-per-request-avg": (sent + failed) / requests if requests else 0.0,
        }}

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, stop the linger timer, close an owned broker."""
        self._sender.close(timeout)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
