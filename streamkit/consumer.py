"""``streamkit.Consumer``: kafka-python's ``KafkaConsumer`` over any broker URL.

A consumer reads what it is subscribed to (``subscribe(topics)`` or a ``pattern``,
also the topics given to the constructor) as one member of ``group_id``, or, without
a group, every partition of them; or the partitions named by ``assign()``, without
group membership. Subscribing and assigning exclude each other, as in kafka-python
(``IllegalStateError``). It has no thread of its own: group housekeeping, auto commits
and pattern matching run inside ``poll`` and iteration. See docs/clients.md.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, Unpack

from streamkit.assigned import ManualAssignment
from streamkit.client_metrics import Rates
from streamkit.errors import DecodeError, IllegalStateError, InvalidConfig
from streamkit.transport import connect
from streamkit.transport.base import Broker, GroupConsumer
from streamkit.transport.options import (CONSUMER_OPTIONS, ConsumerOptions, broker_config,
                                         check_names, choose_broker)
from streamkit.types import Message, OffsetAndMetadata, OffsetAndTimestamp, TopicPartition

#: The user's function from bytes to their values (any value type they like).
Deserializer = Callable[[bytes], Any]
#: ``commit_async``'s callback: ``(offsets, None)`` on success, ``(offsets, error)``.
CommitCallback = Callable[[dict[TopicPartition, OffsetAndMetadata], Any], object]

__all__ = ["CommitFuture", "Consumer", "ConsumerGroupMetadata", "ConsumerRebalanceListener"]

#: kafka-python's ``isolation_level`` values (its default first)
ISOLATION_LEVELS = ("read_uncommitted", "read_committed")

_EXCLUSIVE = ("subscription to topics, to a pattern, and manual partition assignment "
              "are mutually exclusive")


class ConsumerRebalanceListener(Protocol):
    """kafka-python's listener: told the partitions taken away from this member before
    they go, and those given to it after."""

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None: ...
    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None: ...


@dataclass(frozen=True)
class ConsumerGroupMetadata:
    """What ``Consumer.consumer_group_metadata()`` returns, for a transactional
    ``Producer.send_offsets_to_transaction``: the group, and the member whose
    partitions the offsets are of (empty for a consumer with manual assignment). A
    commit carrying a member is refused once that member no longer owns the
    partitions (a zombie's, Kafka's KIP-447). On ``kafka://``, ``client_metadata`` is
    librdkafka's own (opaque) metadata of the member, generation included, which
    Kafka's transaction coordinator checks."""

    group_id: str
    member_id: str = ""
    client_metadata: object = field(default=None, compare=False, repr=False)


class CommitFuture:
    """What ``commit_async`` returns: already done (the commit ran in the call)."""

    def __init__(self, offsets: dict[TopicPartition, OffsetAndMetadata],
                 error: BaseException | None) -> None:
        self.value = None if error is not None else offsets
        self.exception = error
        self.is_done = True

    def succeeded(self) -> bool:
        return self.exception is None

    def failed(self) -> bool:
        return self.exception is not None


class Consumer:
    """Reads topics, as one member of ``group_id`` or (without one) all partitions.

    Iterating yields messages (``.topic .partition .offset .key .value .timestamp
    .headers``) until ``consumer_timeout_ms`` passes with none (forever by default).
    kafka-python's ``KafkaConsumer`` settings are taken too: ``bootstrap_servers``
    opens ``kafka://<servers>``; ``client_id``, ``fetch_max_wait_ms``,
    ``heartbeat_interval_ms``, ``max_poll_interval_ms``, ... become librdkafka settings
    on ``kafka://`` and have no effect on the embedded log (docs/clients.md).
    """

    def __init__(self, *topics: str, bootstrap_servers: str | Sequence[str] | None = None,
                 broker: str | Broker | None = None, group_id: str | None = None,
                 auto_offset_reset: str = "latest", enable_auto_commit: bool = True,
                 auto_commit_interval_ms: float = 5000,
                 value_deserializer: Deserializer | None = None,
                 key_deserializer: Deserializer | None = None,
                 consumer_timeout_ms: float | None = None,
                 session_timeout_ms: float = 10000, max_poll_records: int = 500,
                 metadata_max_age_ms: float = 300_000, datadir: str | Path = "stores",
                 default_partitions: int = 1, config: dict[str, Any] | None = None,
                 isolation_level: str = "read_uncommitted",
                 **options: Unpack[ConsumerOptions]) -> None:
        check_names("Consumer", options, CONSUMER_OPTIONS)
        if auto_offset_reset not in ("earliest", "latest"):
            raise InvalidConfig(f"Consumer auto_offset_reset={auto_offset_reset!r}: use "
                                "earliest or latest")
        if isolation_level not in ISOLATION_LEVELS:
            raise InvalidConfig(f"Consumer isolation_level={isolation_level!r}: use "
                                "read_uncommitted or read_committed")
        #: read_committed: only records of committed transactions (and none past the
        #: last stable offset); read_uncommitted: every record but transaction markers
        self.isolation_level = isolation_level
        target = choose_broker("Consumer", broker, bootstrap_servers)
        config = broker_config("Consumer", "consumer", target, config, options)
        self.group_id = group_id
        self._reset: Literal["earliest", "latest"] = \
            "earliest" if auto_offset_reset == "earliest" else "latest"
        self._session_timeout = session_timeout_ms / 1000
        self._value_deserializer = value_deserializer
        self._key_deserializer = key_deserializer
        self._timeout = None if consumer_timeout_ms is None or \
            consumer_timeout_ms == float("inf") else consumer_timeout_ms / 1000
        self._max_poll_records = max_poll_records
        self._metadata_max_age = metadata_max_age_ms / 1000
        if isinstance(target, str):
            self._broker = connect(target, datadir=datadir,
                                   default_partitions=default_partitions, config=config)
            self._owned = True
        else:
            self._broker, self._owned = target, False
        self._buffer: list[Message] = []
        self._iter_buffer: list[Message] = []
        self._closed = False
        #: what is read: None before subscribe()/assign() and after unsubscribe()
        self._member: GroupConsumer | ManualAssignment | None = None
        self._topics: list[str] | None = None       # the subscription (None: none)
        self._pattern: re.Pattern[str] | None = None
        self._listener: ConsumerRebalanceListener | None = None
        self._manual = False
        self._next_match = 0.0
        # auto commit is done here, not by the group member: the member's positions
        # run ahead of what the iterator has handed out
        self._auto_commit_every = (auto_commit_interval_ms / 1000
                                   if enable_auto_commit and group_id is not None else None)
        self._next_auto_commit = time.monotonic() + (self._auto_commit_every or 0)
        # counters for metrics(), added to once per batch
        self._consumed = self._fetches = self._commits = 0
        self._rates = Rates("consumed", "fetches", "commits")
        if topics:
            self.subscribe(topics)

    # -- what is read ------------------------------------------------------------------
    def subscribe(self, topics: Iterable[str] | str = (), pattern: str | None = None,
                  listener: ConsumerRebalanceListener | None = None) -> None:
        """Read ``topics``, or every topic whose name matches the regular expression
        ``pattern`` (checked again every ``metadata_max_age_ms``), replacing the
        previous subscription. With a ``group_id`` the partitions are shared with the
        group's other members; ``listener`` is told what each rebalance moves."""
        if self._manual:
            raise IllegalStateError(_EXCLUSIVE)
        names = [topics] if isinstance(topics, str) else list(topics)
        if names and pattern is not None:
            raise IllegalStateError(_EXCLUSIVE)
        if not names and pattern is None:
            raise ValueError("subscribe() needs topics or a pattern")
        self._listener = listener
        if pattern is not None:
            self._pattern = re.compile(pattern)
            names = self._matching()
        else:
            self._pattern = None
        self._join(list(dict.fromkeys(names)))

    def _matching(self) -> list[str]:
        assert self._pattern is not None
        self._next_match = time.monotonic() + self._metadata_max_age
        return sorted(t for t in self._broker.list_topics() if self._pattern.match(t))

    def _join(self, topics: list[str]) -> None:
        """Leave what is read now (committing it with auto commit) and read ``topics``."""
        old = self._member
        # without a group nothing is committed: partitions still read keep their place
        kept = self._delivered_positions(old) \
            if self.group_id is None and old is not None else {}
        self._leave()
        self._topics = topics
        if not topics:
            return                        # a pattern that matches nothing yet
        if self.group_id is None:
            partitions = []
            for topic in topics:
                self._broker.create_topic(topic, exist_ok=True)
                partitions += [TopicPartition(topic, p)
                               for p in range(self._broker.partition_count(topic) or 0)]
            self._member = member = ManualAssignment(
                self._broker, partitions, self._reset,
                isolation_level=self.isolation_level)
            for tp in member.assignment() & kept.keys():
                member.seek(tp, kept[tp])
            return
        listener = self._listener
        self._member = self._broker.group_consumer(
            self.group_id, topics, auto_offset_reset=self._reset,
            enable_auto_commit=False, session_timeout=self._session_timeout,
            on_assign=None if listener is None else listener.on_partitions_assigned,
            on_revoke=None if listener is None else listener.on_partitions_revoked,
            isolation_level=self.isolation_level)

    def _leave(self, autocommit: bool | None = None) -> None:
        """Stop reading what is read now; commit what was handed out if ``autocommit``
        (by default: if auto commit is on)."""
        member, self._member = self._member, None
        if member is None:
            return
        if autocommit is None:
            autocommit = self._auto_commit_every is not None
        undelivered = bool(self._iter_buffer or self._buffer)
        if autocommit and undelivered and self.group_id is not None:
            member.commit(self._delivered_positions(member))
        member.close(commit=autocommit and not undelivered)
        self._iter_buffer, self._buffer = [], []

    def unsubscribe(self) -> None:
        """Stop reading every topic and partition (subscribed or assigned)."""
        self._leave()
        self._topics, self._pattern, self._manual = None, None, False

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly ``partitions``, without joining ``group_id`` (kafka-python's
        manual assignment): from the group's committed offsets if it has them, else
        from ``auto_offset_reset``; ``commit()`` still stores the group's offsets."""
        if self._topics is not None:
            raise IllegalStateError(_EXCLUSIVE)
        wanted = list(dict.fromkeys(TopicPartition(*tp) for tp in partitions))
        self._leave()
        self._manual = bool(wanted)
        if wanted:
            self._member = ManualAssignment(self._broker, wanted, self._reset,
                                            self.group_id, self.isolation_level)

    def assignment(self) -> set[TopicPartition]:
        """The partitions read now (a group member's change with rebalances)."""
        return set() if self._member is None else self._member.assignment()

    def subscription(self) -> set[str] | None:
        """The subscribed topics; None when not subscribed (as kafka-python)."""
        return None if self._topics is None else set(self._topics)

    def _reader(self) -> GroupConsumer | ManualAssignment | None:
        if self._member is None and self._topics is None:
            raise IllegalStateError("the Consumer is not subscribed to any topic nor "
                                    "assigned any partition: call subscribe() or assign()")
        return self._member

    # -- reading -----------------------------------------------------------------------
    def poll(self, timeout_ms: float = 0, max_records: int | None = None
             ) -> dict[TopicPartition, list[Message]]:
        """Messages by partition, waiting up to ``timeout_ms`` for the first."""
        limit = max_records or self._max_poll_records
        messages = self._next_batch(limit, timeout_ms / 1000)
        out: dict[TopicPartition, list[Message]] = {}
        for message in messages:
            out.setdefault(TopicPartition(message.topic, message.partition),
                           []).append(message)
        return out

    def _next_batch(self, limit: int, timeout: float) -> list[Message]:
        member = self._reader()
        if self._pattern is not None and time.monotonic() >= self._next_match:
            names = self._matching()
            if names != self._topics:
                self._join(names)
                member = self._member
        if self._auto_commit_every is not None and time.monotonic() >= self._next_auto_commit:
            self._next_auto_commit = time.monotonic() + self._auto_commit_every
            if member is not None:
                self.commit()   # what was handed out so far, nothing still buffered
        if self._buffer:
            batch, self._buffer = self._buffer[:limit], self._buffer[limit:]
            return batch
        if member is None:                   # a pattern that matches no topic yet
            time.sleep(min(timeout, max(self._next_match - time.monotonic(), 0)))
            return []
        raw = member.poll(limit, timeout)
        self._fetches += 1
        self._consumed += len(raw)
        return self._decode(raw) if raw else raw

    def _decode(self, raw: list[Message]) -> list[Message]:
        kd, vd = self._key_deserializer, self._value_deserializer
        if kd is None and vd is None:
            return raw
        for i, message in enumerate(raw):
            try:
                if kd is not None and message.key is not None:
                    message.key = kd(message.key)
                if vd is not None and message.value is not None:
                    message.value = vd(message.value)
            except Exception as exc:
                self._rewind_after_failure(raw, i)
                raise DecodeError(
                    f"cannot deserialize {message.topic}[{message.partition}]@"
                    f"{message.offset}: {exc!r} (the message is skipped)") from exc
        return raw

    def _rewind_after_failure(self, raw: list[Message], bad: int) -> None:
        """Keep the good messages before ``bad`` for the next poll, skip ``bad``, and
        seek back so the messages after it are fetched again."""
        assert self._member is not None
        self._buffer = raw[:bad]
        rewind: dict[TopicPartition, int] = {}
        failed = raw[bad]
        for message in raw[bad + 1:]:
            rewind.setdefault(message.tp, message.offset)
        rewind.setdefault(failed.tp, failed.offset + 1)
        for tp, offset in rewind.items():
            self._member.seek(tp, offset)

    def __iter__(self) -> Iterator[Message]:
        return self

    def __next__(self) -> Message:
        if not self._iter_buffer:
            timeout = self._timeout
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._iter_buffer:
                wait = 1.0 if deadline is None else max(deadline - time.monotonic(), 0)
                self._iter_buffer = self._next_batch(self._max_poll_records, wait)
                if self._iter_buffer:
                    self._iter_buffer.reverse()
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    raise StopIteration
        return self._iter_buffer.pop()

    # -- positions and commits ---------------------------------------------------------
    def _delivered_positions(self, member: GroupConsumer | ManualAssignment
                             ) -> dict[TopicPartition, int]:
        """The current positions, less the messages fetched but not yet handed out (by
        the iterator, or kept back after a decode error)."""
        offsets = {tp: member.position(tp) for tp in member.assignment()}
        for message in self._iter_buffer + self._buffer:
            offsets[message.tp] = min(offsets.get(message.tp, message.offset),
                                      message.offset)
        return offsets

    def commit(self, offsets: Mapping[TopicPartition, int | OffsetAndMetadata] | None = None
               ) -> None:
        """Commit ``offsets`` (next offsets to read, as numbers or ``OffsetAndMetadata``),
        or the positions of what was handed out."""
        if self.group_id is None:
            raise InvalidConfig("commit needs a Consumer with a group_id")
        member = self._reader()
        if member is None:
            return
        if offsets is None:
            numbers = self._delivered_positions(member) \
                if self._iter_buffer or self._buffer else None
        else:
            numbers = {tp: o.offset if isinstance(o, OffsetAndMetadata) else o
                       for tp, o in offsets.items()}
        member.commit(numbers)
        self._commits += 1

    def commit_async(self, offsets: Mapping[TopicPartition, int | OffsetAndMetadata]
                     | None = None, callback: CommitCallback | None = None
                     ) -> CommitFuture:
        """``commit``, with its outcome handed to ``callback(offsets, error or None)``
        instead of raised. It runs in this call (a commit here is one file write, or
        one Kafka round trip): the returned future is already done."""
        member = self._member
        if offsets is None:
            offsets = {} if member is None else self._delivered_positions(member)
        shown = {tp: o if isinstance(o, OffsetAndMetadata) else OffsetAndMetadata(o, "")
                 for tp, o in offsets.items()}
        error: BaseException | None = None
        try:
            self.commit(offsets)
        except Exception as exc:             # noqa: BLE001 - to the callback
            error = exc
        if callback is not None:
            callback(shown, error)
        return CommitFuture(shown, error)

    def consumer_group_metadata(self) -> ConsumerGroupMetadata:
        """This consumer's group and member, for a transactional Producer's
        ``send_offsets_to_transaction`` (confluent-kafka's name)."""
        if self.group_id is None:
            raise InvalidConfig("consumer_group_metadata needs a Consumer with a group_id")
        member_id = getattr(self._member, "member_id", "")
        # (a kafka:// group member has librdkafka's metadata; other members have none)
        client_metadata = getattr(self._member, "group_metadata", None)
        return ConsumerGroupMetadata(
            self.group_id, member_id if isinstance(member_id, str) else "",
            client_metadata() if callable(client_metadata) else None)

    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset of ``tp`` (None if there is none)."""
        member = self._member
        if member is not None:
            return member.committed(tp)
        if self.group_id is None:
            return None
        return next((g.committed for g in self._broker.group_offsets(self.group_id)
                     if (g.topic, g.partition) == tp), None)

    def position(self, tp: TopicPartition) -> int:
        return self._assigned(tp).position(tp)

    def _assigned(self, tp: TopicPartition) -> GroupConsumer | ManualAssignment:
        member = self._member
        if member is None or tp not in member.assignment():
            raise IllegalStateError(f"{tp.topic}[{tp.partition}] is not assigned to "
                                    "this consumer")
        return member

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make the next poll of ``tp`` (an assigned partition) start at ``offset``."""
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(f"seek offset={offset!r}: a whole number >= 0")
        member = self._member
        if member is None:
            raise IllegalStateError(f"{tp.topic}[{tp.partition}] is not assigned to "
                                    "this consumer")
        # (the member checks the partition: a listener's seek from
        # on_partitions_assigned comes before the partition shows in assignment())
        try:
            member.seek(tp, offset)
        except KeyError:
            raise IllegalStateError(f"{tp.topic}[{tp.partition}] is not assigned to "
                                    "this consumer") from None
        self._iter_buffer = [m for m in self._iter_buffer if m.tp != tp]
        self._buffer = [m for m in self._buffer if m.tp != tp]

    def seek_to_beginning(self, *tps: TopicPartition) -> None:
        """Seek ``tps`` (default: every assigned partition) to their first offset."""
        for tp in tps or sorted(self.assignment()):
            self.seek(tp, self._broker.offsets(tp)[0])

    def seek_to_end(self, *tps: TopicPartition) -> None:
        """Seek ``tps`` (default: every assigned partition) to their end offset."""
        for tp in tps or sorted(self.assignment()):
            self.seek(tp, self._broker.offsets(tp)[1])

    def offsets_for_times(self, timestamps: Mapping[TopicPartition, int]
                          ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """For each partition, the first offset whose record's timestamp (ms) is at or
        after the one given, with that timestamp; None where no record is that late."""
        for tp, ts in timestamps.items():
            if not isinstance(ts, int) or ts < 0:
                raise ValueError(f"offsets_for_times: {tp.topic}[{tp.partition}] "
                                 f"timestamp {ts!r} must be a whole number of ms >= 0")
        return {tp: self._broker.offset_for_time(tp, ts) for tp, ts in timestamps.items()}

    def topics(self) -> set[str]:
        return set(self._broker.list_topics())

    def partitions_for_topic(self, topic: str) -> set[int]:
        count = self._broker.partition_count(topic)
        return set(range(count)) if count else set()

    def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._broker.offsets(tp)[1] for tp in tps}

    def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._broker.offsets(tp)[0] for tp in tps}

    def pause(self, *tps: TopicPartition) -> None:
        if self._member is not None:
            self._member.pause(tps)

    def resume(self, *tps: TopicPartition) -> None:
        if self._member is not None:
            self._member.resume(tps)

    # -- metrics and lifecycle ---------------------------------------------------------
    def metrics(self, raw: bool = False) -> dict[str, dict[str, float]]:
        """Counts and rates shaped like kafka-python's ``metrics()`` (``raw`` is
        accepted and changes nothing). Rates are per second over the last 30-60 s
        when called at least every 30 s; ``records-lag-max`` asks the broker for the
        end offset of each assigned partition."""
        now = time.monotonic()
        rates = self._rates
        assigned = self.assignment()
        lag = max((self._broker.offsets(tp)[1] - self.position(tp) for tp in assigned),
                  default=0)
        return {
            "consumer-fetch-manager-metrics": {
                "records-consumed-total": self._consumed,
                "records-consumed-rate": rates.of("consumed", self._consumed, now),
                "fetch-total": self._fetches,
                "fetch-rate": rates.of("fetches", self._fetches, now),
                "records-per-request-avg": self._consumed / self._fetches
                if self._fetches else 0.0,
                "records-lag-max": lag,
            },
            "consumer-coordinator-metrics": {
                "assigned-partitions": len(assigned),
                "commit-total": self._commits,
                "commit-rate": rates.of("commits", self._commits, now),
            },
        }

    def close(self, autocommit: bool = True) -> None:
        """Commit what was handed out (with ``enable_auto_commit`` and ``autocommit``),
        leave the group, close a broker the consumer opened."""
        if self._closed:
            return
        self._closed = True
        # (as kafka-python: only a consumer with auto commit commits when it closes)
        self._leave(autocommit=autocommit and self._auto_commit_every is not None)
        if self._owned:
            self._broker.close()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
