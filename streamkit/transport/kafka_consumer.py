"""Reading from Kafka: a consumer-group member, a group-less fetcher and an end-offset
reader, each over one confluent-kafka ``Consumer``.

confluent-kafka runs its network I/O on librdkafka threads; every call here only moves
what those threads already fetched, so ``timeout=0`` never waits.
"""
from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import cast

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka import Message as KafkaMessage
from confluent_kafka import TopicPartition as KTP

from streamkit import errors
from streamkit.transport.kafka_common import ConsumedMessage, KafkaConfig, broker_error, \
    error_code, log, make_client, retrying, to_messages
from streamkit.types import Message, TopicPartition

RebalanceCallback = Callable[[list[TopicPartition]], None]

#: Errors a consumer reports that do not stop consumption (librdkafka retries them).
_TRANSIENT = {KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART,
              KafkaError._UNKNOWN_TOPIC, KafkaError._TRANSPORT,
              KafkaError._ALL_BROKERS_DOWN, KafkaError.LEADER_NOT_AVAILABLE,
              KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError._TIMED_OUT}

#: A fetch at an offset the partition does not hold. With ``auto.offset.reset=error``
#: (the fetcher's setting) librdkafka reports the broker's OFFSET_OUT_OF_RANGE as its own
#: _AUTO_OFFSET_RESET ("fetch failed due to requested offset not available").
_OUT_OF_RANGE = {KafkaError.OFFSET_OUT_OF_RANGE, KafkaError._AUTO_OFFSET_RESET}

#: List-offsets answers of a partition whose leader is not in place yet: Kafka makes a
#: new topic's leaders a moment after the topic shows in its metadata.
_NO_LEADER_YET = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                  KafkaError.UNKNOWN_TOPIC_OR_PART}

#: Commit refusals that mean "the group is rebalancing", not a broken broker.
_REBALANCING = {KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
                KafkaError.UNKNOWN_MEMBER_ID, KafkaError.FENCED_INSTANCE_ID,
                KafkaError._STATE}


#: Called with each error event ``drain`` meets, and its error.
ErrorCallback = Callable[[KafkaMessage, KafkaError], None]


def _tps(parts: Iterable[KTP]) -> list[TopicPartition]:
    return [TopicPartition(p.topic, p.partition) for p in parts]


def drain(consumer: Consumer, max_records: int, timeout: float,
          on_error: ErrorCallback) -> list[ConsumedMessage]:
    """Up to ``max_records`` raw messages, waiting at most ``timeout`` for the first.

    ``Consumer.consume`` waits for the *whole* batch or the timeout, so take what is
    queued at once and, only if that is nothing, wait for one more with ``poll``.
    """
    raw = consumer.consume(max_records, 0)
    kept = _keep_data(raw, on_error)
    if not raw and timeout > 0:
        deadline = time.monotonic() + timeout
        while not kept:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            first = consumer.poll(left)
            if first is None:
                break
            raw = [first]
            if max_records > 1:
                raw.extend(consumer.consume(max_records - 1, 0))
            kept = _keep_data(raw, on_error)
    return _take_queued(consumer, kept, len(raw) - len(kept), max_records, on_error)


def _take_queued(consumer: Consumer, kept: list[ConsumedMessage], events: int,
                 max_records: int, on_error: ErrorCallback) -> list[ConsumedMessage]:
    """``kept`` and the records still queued, up to ``max_records``: ``events`` error
    events (a partition's end, under ``enable.partition.eof``) were taken with them,
    each in a record's place in the batch, so take again what is queued."""
    while events and len(kept) < max_records:
        raw = consumer.consume(max_records - len(kept), 0)
        more = _keep_data(raw, on_error)
        kept = kept + more
        events = len(raw) - len(more)
    return kept


def _keep_data(raw: list[KafkaMessage], on_error: ErrorCallback) -> list[ConsumedMessage]:
    """The records of ``raw``; its error events go to ``on_error``."""
    if all(m.error() is None for m in raw):
        return cast(list[ConsumedMessage], raw)      # records only
    out: list[ConsumedMessage] = []
    for m in raw:
        err = m.error()
        if err is None:
            out.append(cast(ConsumedMessage, m))
        else:
            on_error(m, err)
    return out


class KafkaGroupConsumer:
    """One member of a Kafka consumer group (``Broker.group_consumer``)."""

    def __init__(self, conf: KafkaConfig, group_id: str, topics: Sequence[str], *,
                 servers: str, enable_auto_commit: bool,
                 on_assign: RebalanceCallback | None,
                 on_revoke: RebalanceCallback | None,
                 auto_offset_reset: str,
                 on_lost: RebalanceCallback | None = None,
                 offsets: Callable[[TopicPartition], tuple[int, int]]) -> None:
        self.group_id = group_id
        self._servers = servers
        self._auto_commit = enable_auto_commit
        self._auto_offset_reset = auto_offset_reset
        self._offsets = offsets     # the broker's (start, end) of a partition
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._on_lost = on_lost or on_revoke
        #: the member id at the last rebalance callback: what this member's offsets
        #: belong to (librdkafka rejoins in its own thread, before the next poll tells)
        self._member_seen = ""
        self._closed = False
        self._cooperative = "cooperative" in str(conf.get("partition.assignment.strategy", ""))
        # Partitions being assigned while on_assign runs, with the offsets seek() asked
        # for: librdkafka assigns them only after the callback returns.
        self._assigning: dict[TopicPartition, int | None] | None = None
        self._consumer = make_client(Consumer, conf, "consumer")
        self._consumer.subscribe(list(topics), on_assign=self._assigned,
                                 on_revoke=self._revoked, on_lost=self._lost)

    @property
    def member_id(self) -> str:
        """The id the group coordinator gave this member ("" before the first join)."""
        try:
            return self._consumer.memberid() or ""
        except (KafkaException, RuntimeError):
            return ""

    # librdkafka calls these from inside consume()/poll()/close() on this thread; it
    # assigns/unassigns by itself after they return.
    def _assigned(self, consumer: Consumer, parts: list[KTP]) -> None:
        self._member_seen = self.member_id
        if self._on_assign is None or not parts:
            return
        self._assigning = dict.fromkeys(_tps(parts))
        try:
            self._on_assign(list(self._assigning))
            seeks = self._assigning
        finally:
            self._assigning = None
        if any(off is not None for off in seeks.values()):
            # Assign here, with the offsets asked for (librdkafka then does not).
            assigned = [KTP(tp.topic, tp.partition) if off is None
                        else KTP(tp.topic, tp.partition, off) for tp, off in seeks.items()]
            if self._cooperative:
                consumer.incremental_assign(assigned)
            else:
                consumer.assign(assigned)

    def _revoked(self, _consumer: Consumer, parts: list[KTP]) -> None:
        self._member_seen = self.member_id
        if self._on_revoke is not None and parts:
            self._on_revoke(_tps(parts))

    def _lost(self, _consumer: Consumer, parts: list[KTP]) -> None:
        # librdkafka found this member out of its group (its session expired, or the
        # coordinator answered UNKNOWN_MEMBER_ID): the partitions are another's now
        self._member_seen = self.member_id
        if self._on_lost is not None and parts:
            self._on_lost(_tps(parts))

    def assignment(self) -> set[TopicPartition]:
        """The partitions this member owns right now."""
        return set(_tps(self._consumer.assignment()))

    def prepare_wait(self) -> tuple[int | None, float]:
        """No descriptor tells of new messages here: the caller sleeps a short while
        and polls (librdkafka fetches in its own threads meanwhile)."""
        return None, math.inf

    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[Message]:
        """Up to ``max_records`` messages of owned partitions; runs heartbeats and
        rebalance callbacks as a side effect."""
        raw = drain(self._consumer, max_records, timeout, self._on_error)
        # the protocol promises each partition's messages together (librdkafka may
        # interleave partitions); a stable sort keeps offset order within each
        raw.sort(key=_topic_partition)
        return to_messages(raw)

    def _on_error(self, msg: KafkaMessage, err: KafkaError) -> None:
        if err.fatal() or err.code() not in _TRANSIENT:
            where = f"{msg.topic()}[{msg.partition()}]" if msg.topic() else "group"
            raise errors.BrokerError(f"group {self.group_id!r} consuming {where} from "
                                     f"{self._servers}: {err.str()}")
        log.debug("group %s: %s", self.group_id, err.str())

    def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        """Synchronously commit ``offsets`` (next offsets to read), or the current
        positions when None."""
        try:
            if offsets is None:
                self._consumer.commit(asynchronous=False)
            elif offsets:
                self._consumer.commit(
                    offsets=[KTP(tp.topic, tp.partition, off) for tp, off in offsets.items()],
                    asynchronous=False)
        except KafkaException as exc:
            code = error_code(exc)
            if code == KafkaError._NO_OFFSET:
                return  # nothing consumed since the last commit
            if code in _REBALANCING:
                raise errors.CommitFailed(
                    f"commit of group {self.group_id!r} on {self._servers} refused during "
                    f"a rebalance: {exc.args[0].str()}") from None
            raise broker_error(exc, f"commit of group {self.group_id!r}",
                               self._servers) from None

    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset of ``tp``, or None."""
        try:
            [part] = self._consumer.committed([KTP(tp.topic, tp.partition)], timeout=10)
        except KafkaException as exc:
            raise broker_error(exc, f"committed offset of group {self.group_id!r} on "
                               f"{tp.topic}[{tp.partition}]", self._servers) from None
        return part.offset if part.offset >= 0 else None

    def position(self, tp: TopicPartition) -> int:
        """Offset of the next message ``poll`` returns for ``tp``: the position after
        what was consumed, else the committed offset, else ``auto.offset.reset``."""
        [part] = self._consumer.position([KTP(tp.topic, tp.partition)])
        if part.offset >= 0:
            return part.offset
        committed = self.committed(tp)
        if committed is not None:
            return committed
        start, end = self._offsets(tp)
        return start if self._auto_offset_reset == "earliest" else end

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make the next ``poll`` of ``tp`` start at ``offset``. ``tp`` must be owned,
        or being assigned (a seek from inside ``on_assign`` works)."""
        if self._assigning is not None and tp in self._assigning:
            self._assigning[tp] = offset
            return
        if tp not in self.assignment():
            raise errors.BrokerError(f"seek {tp.topic}[{tp.partition}] to {offset}: the "
                                     f"partition is not assigned to this member of group "
                                     f"{self.group_id!r}")
        try:
            self._consumer.seek(KTP(tp.topic, tp.partition, offset))
        except KafkaException as exc:
            raise broker_error(exc, f"seek {tp.topic}[{tp.partition}] to {offset}",
                               self._servers) from None

    def pause(self, tps: Iterable[TopicPartition]) -> None:
        """Stop returning messages of ``tps`` until ``resume``."""
        parts = [KTP(tp.topic, tp.partition) for tp in tps]
        if parts:
            self._consumer.pause(parts)

    def resume(self, tps: Iterable[TopicPartition]) -> None:
        """Undo ``pause``."""
        parts = [KTP(tp.topic, tp.partition) for tp in tps]
        if parts:
            self._consumer.resume(parts)

    def group_metadata(self) -> object:
        """librdkafka's group metadata (opaque), for ``send_offsets`` of a
        transaction. Raises ``PartitionsLost`` if this member was removed from the
        group since the last rebalance callback: librdkafka rejoins in its own thread,
        so its metadata can name a new member and generation before ``poll`` reports
        the loss, and the coordinator would take the offsets of the old assignment
        under it (KIP-447 fencing checks only the generation)."""
        member = self.member_id
        if member != self._member_seen:
            raise errors.PartitionsLost(
                f"group {self.group_id!r}: this member ({self._member_seen or 'none'}) "
                f"was removed from the group and rejoined as {member or 'none yet'} "
                "since its partitions were assigned: their offsets may not be "
                "committed (its session expired: a pause longer than session_timeout)")
        metadata: object = self._consumer.consumer_group_metadata()
        return metadata

    def close(self, commit: bool = True) -> None:
        """Commit positions (unless told not to), leave the group, free the client."""
        if self._closed:
            return
        self._closed = True
        try:
            if commit and not self._auto_commit and self._consumer.assignment():
                self.commit()
        finally:
            self._consumer.close()


class Fetcher:
    """Group-less reads of single partitions (``Broker.fetch``) over one assigned
    consumer, reused across calls: assigning costs a round trip, a reused assignment
    keeps prefetching the partition being restored.

    Several partitions may be read in turn; messages librdkafka hands over for a
    partition other than the one asked for wait in a per-partition buffer.
    """

    MAX_PARTITIONS = 128       # assigned at once; the least recently used goes first
    MAX_BUFFERED = 20_000      # messages per partition before it is paused

    def __init__(self, conf: KafkaConfig, servers: str, catch_up: float = 10.0) -> None:
        self._servers = servers
        self._catch_up = catch_up
        self._consumer = make_client(Consumer, conf, "consumer")
        self._cursor: dict[TopicPartition, int] = {}   # where each stream continues
        self._buffers: dict[TopicPartition, list[Message]] = {}
        self._paused: set[TopicPartition] = set()
        #: where librdkafka last reported a partition's end (its fetch position then):
        #: past transaction markers, which it never hands over
        self._ends: dict[TopicPartition, int] = {}
        self._error: errors.BrokerError | None = None

    @staticmethod
    def config() -> KafkaConfig:
        """Settings streamkit needs on the fetcher's consumer."""
        return {"group.id": f"streamkit-fetch-{uuid.uuid4().hex[:12]}",
                "enable.auto.commit": False, "enable.auto.offset.store": False,
                "auto.offset.reset": "error", "enable.partition.eof": True}

    def fetch(self, tp: TopicPartition, offset: int, max_records: int,
              timeout: float) -> list[Message]:
        """Messages of ``tp`` from ``offset`` on (first offset >= it)."""
        self._position(tp, offset)
        buf = self._buffers[tp]
        if len(buf) < max_records:
            self._take(max_records - len(buf), 0.0)
        if not buf:
            self._wait(tp, offset, max_records, timeout)
        out = buf[:max_records]
        del buf[:max_records]
        if out:
            self._cursor[tp] = out[-1].offset + 1
        else:
            self._check_in_range(tp, offset)
        if tp in self._paused and len(buf) < self.MAX_BUFFERED // 2:
            self._consumer.resume([KTP(tp.topic, tp.partition)])
            self._paused.discard(tp)
        return out

    def _wait(self, tp: TopicPartition, offset: int, max_records: int,
              timeout: float) -> None:
        """Wait up to ``timeout`` for records not yet written; records the partition
        already holds are waited for up to ``catch_up`` seconds even with
        ``timeout=0``, since the embedded log returns those at once and callers (table
        restore) read an empty answer as "at the end"."""
        started = time.monotonic()
        deadline = started + timeout
        catch_up = started + self._catch_up
        buf = self._buffers[tp]
        ktp = KTP(tp.topic, tp.partition)
        while not buf:
            _, high = self._consumer.get_watermark_offsets(ktp, cached=True)
            # unknown yet, or records to come (a partition whose last offsets are
            # transaction markers has none: librdkafka reached its end past them)
            behind = high < 0 or high > offset and self._ends.get(tp, -1) < high
            left = (max(deadline, catch_up) if behind else deadline) - time.monotonic()
            if left <= 0:
                return
            # Short slices: the high watermark of the next fetch response may say that
            # the partition is at its end.
            self._take(max_records, min(left, 0.05))

    def _check_in_range(self, tp: TopicPartition, offset: int) -> None:
        # Kafka answers a fetch past the end with OFFSET_OUT_OF_RANGE (see _on_error);
        # some brokers (tansu) answer with nothing, so compare with the high watermark
        # of the last fetch response too.
        _, high = self._consumer.get_watermark_offsets(KTP(tp.topic, tp.partition),
                                                       cached=True)
        if 0 <= high < offset:
            self._forget(tp)
            raise errors.OffsetOutOfRange(
                f"fetch {tp.topic}[{tp.partition}] at offset {offset}: past the end "
                f"offset {high}")

    def _position(self, tp: TopicPartition, offset: int) -> None:
        if tp in self._cursor:
            # Move to the end of the LRU order.
            cursor = self._cursor.pop(tp)
            self._cursor[tp] = cursor
            if offset == cursor:
                return
            buf = self._buffers[tp]
            if buf and buf[0].offset <= offset <= buf[-1].offset + 1:
                del buf[:sum(1 for m in buf if m.offset < offset)]
                self._cursor[tp] = offset
                return
            self._buffers[tp] = []
            self._cursor[tp] = offset
            self._ends.pop(tp, None)
            self._consumer.incremental_unassign([KTP(tp.topic, tp.partition)])
            self._paused.discard(tp)
        else:
            if len(self._cursor) >= self.MAX_PARTITIONS:
                self._forget(next(iter(self._cursor)))
            self._cursor[tp] = offset
            self._buffers[tp] = []
        self._consumer.incremental_assign([KTP(tp.topic, tp.partition, offset)])

    def has_read(self, topic: str) -> bool:
        """Whether any partition of ``topic`` is assigned here."""
        return any(tp.topic == topic for tp in self._cursor)

    def _forget(self, tp: TopicPartition) -> None:
        self._consumer.incremental_unassign([KTP(tp.topic, tp.partition)])
        self._cursor.pop(tp, None)
        self._buffers.pop(tp, None)
        self._ends.pop(tp, None)
        self._paused.discard(tp)

    def _take(self, max_records: int, timeout: float) -> None:
        buffers = self._buffers
        for msg in to_messages(drain(self._consumer, max_records, timeout,
                                     self._on_error)):
            # A plain tuple finds the TopicPartition key: a NamedTuple hashes and
            # compares as its tuple (and costs a constructor call per message).
            buf = buffers.get((msg.topic, msg.partition))  # type: ignore[call-overload]
            if buf is None:
                continue   # a partition unassigned since librdkafka fetched it
            buf.append(msg)
        for tp, buf in buffers.items():
            if len(buf) >= self.MAX_BUFFERED and tp not in self._paused:
                self._consumer.pause([KTP(tp.topic, tp.partition)])
                self._paused.add(tp)
        if self._error is not None:
            exc, self._error = self._error, None
            raise exc

    def _on_error(self, msg: KafkaMessage, err: KafkaError) -> None:
        tp = TopicPartition(msg.topic() or "", msg.partition() or 0)
        if err.code() == KafkaError._PARTITION_EOF:
            offset = msg.offset()
            if tp in self._cursor and offset is not None:
                self._ends[tp] = offset
            return
        if err.code() in _OUT_OF_RANGE and tp in self._cursor:
            low, high = self._consumer.get_watermark_offsets(
                KTP(tp.topic, tp.partition), timeout=10)
            wanted = self._cursor[tp]
            if wanted < low:
                # Retention removed it: start at the first offset still there. The
                # partition keeps its buffer (the fetch waiting here holds that list).
                ktp = KTP(tp.topic, tp.partition)
                self._consumer.incremental_unassign([ktp])
                self._consumer.incremental_assign([KTP(tp.topic, tp.partition, low)])
                self._paused.discard(tp)
                return
            self._forget(tp)
            self._error = errors.OffsetOutOfRange(
                f"fetch {tp.topic}[{tp.partition}] at offset {wanted}: partition holds "
                f"offsets {low}..{high}")
            return
        if err.fatal() or err.code() not in _TRANSIENT:
            self._error = errors.BrokerError(
                f"fetch {tp.topic}[{tp.partition}] from {self._servers}: {err.str()}")

    def close(self) -> None:
        self._consumer.close()


class EndOffsets:
    """Start and end offsets of partitions, the end taken from a fetch response's high
    watermark: some Kafka-protocol brokers (tansu) answer list-offsets "latest" wrong
    when a batch holds several records, while every broker fills the fetch high
    watermark right."""

    def __init__(self, conf: KafkaConfig, servers: str) -> None:
        self._servers = servers
        self._consumer = make_client(Consumer, conf, "consumer")
        self.topics: set[str] = set()     # topics this consumer has fetched from

    @staticmethod
    def config() -> KafkaConfig:
        return {"group.id": f"streamkit-offsets-{uuid.uuid4().hex[:12]}",
                "enable.auto.commit": False, "enable.auto.offset.store": False,
                "auto.offset.reset": "latest", "enable.partition.eof": True,
                # An end-of-partition fetch waits this long at the broker.
                "fetch.wait.max.ms": 10, "fetch.max.bytes": 1 << 20,
                "max.partition.fetch.bytes": 1 << 16}

    def offsets(self, tps: Sequence[TopicPartition],
                timeout: float) -> dict[TopicPartition, tuple[int, int]]:
        """``{tp: (start, end)}``."""
        listed: dict[TopicPartition, tuple[int, int]] = {}
        self.topics.update(tp.topic for tp in tps)
        deadline = time.monotonic() + timeout
        for tp in tps:
            listed[tp] = self._listed(tp, deadline)
        # Fetch from the listed end: a fetch reaching the real end reports its high
        # watermark with an end-of-partition event.
        self._consumer.assign([KTP(tp.topic, tp.partition, max(hi, lo))
                               for tp, (lo, hi) in listed.items()])
        waiting = set(listed)
        ends: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + timeout
        out = {}
        try:
            while waiting and time.monotonic() < deadline:
                batch = self._consumer.consume(1000, 0)
                if not batch:
                    # poll() returns as soon as one event is there; consume() would
                    # wait out its whole timeout.
                    one = self._consumer.poll(0.005)
                    batch = [one] if one is not None else []
                for msg in batch:
                    # (topic and partition are None only on errors of no partition)
                    tp = TopicPartition(msg.topic() or "", msg.partition() or 0)
                    err = msg.error()
                    if err is None:
                        ends[tp] = max(ends.get(tp, 0), (msg.offset() or 0) + 1)
                    elif err.code() == KafkaError._PARTITION_EOF:
                        waiting.discard(tp)
            for tp, (lo, hi) in listed.items():
                _, fetched_hi = self._consumer.get_watermark_offsets(
                    KTP(tp.topic, tp.partition), cached=True)
                out[tp] = (lo, max(hi, ends.get(tp, 0), fetched_hi))
        finally:
            self._consumer.unassign()
        return out

    def wait_for_leaders(self, tps: Sequence[TopicPartition], timeout: float) -> None:
        """Return once the leader of each of ``tps`` answers list-offsets for it."""
        self.topics.update(tp.topic for tp in tps)
        deadline = time.monotonic() + timeout
        for tp in tps:
            self._listed(tp, deadline)

    def _listed(self, tp: TopicPartition, deadline: float) -> tuple[int, int]:
        """(start, end) of ``tp`` by list-offsets, asked again while its leader is not
        in place yet, up to ``deadline``."""
        return retrying(
            lambda: self._consumer.get_watermark_offsets(
                KTP(tp.topic, tp.partition),
                timeout=max(deadline - time.monotonic(), 0.1), cached=False),
            _NO_LEADER_YET, deadline, f"offsets of {tp.topic}[{tp.partition}]",
            self._servers)

    def offset_for_time(self, tp: TopicPartition, timestamp: int,
                        timeout: float) -> int | None:
        """The first offset whose timestamp is at or after ``timestamp`` (Kafka's
        ListOffsets by time), or None if there is none."""
        self.topics.add(tp.topic)
        try:
            found = self._consumer.offsets_for_times(
                [KTP(tp.topic, tp.partition, timestamp)], timeout=timeout)
        except KafkaException as exc:
            raise broker_error(exc, f"offset by time of {tp.topic}[{tp.partition}]",
                               self._servers) from None
        offset = found[0].offset if found else -1
        return offset if offset >= 0 else None

    def close(self) -> None:
        self._consumer.close()


def _topic_partition(msg: ConsumedMessage) -> tuple[str, int]:
    return msg.topic(), msg.partition()
