"""The broker interface every driver implements: embedded log, memory, Kafka.

It is synchronous and batch-shaped on purpose. The embedded log does plain file I/O
that finishes in microseconds per batch, and confluent-kafka is a synchronous C client
with its own threads, so both fit a synchronous call that never waits when
``timeout=0``. The App's async code calls these with ``timeout=0`` and does its waiting
with ``anyio.sleep`` / events (see ``streamkit.transport.aio``); the synchronous
``Producer``/``Consumer``/``Admin`` clients call them with real timeouts.

Rules every driver keeps (tests in tests/transport/ check them on each driver):
- offsets are dense per partition from 0 and never reused (compaction leaves gaps);
- ``produce`` returns only once the records are acknowledged as ``acks`` says
  (0: handed over, 1: written to the log, "all": written and fsynced / fully replicated);
- keyed records without an explicit partition go to
  ``(murmur2(key) & 0x7fffffff) % partitions`` (``streamkit.log.partitioner``);
- a group member only returns messages of partitions it currently owns, and calls
  ``on_revoke`` before giving a partition up and ``on_assign`` after taking one; a
  member the group removed (it did not poll within its session) calls ``on_lost``
  (``on_revoke`` if there is none) for what it had, and commits none of it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from streamkit.log.watch import AppendWatch
from streamkit.types import (GroupOffset, Message, OffsetAndTimestamp, OutgoingRecord,
                             RecordMetadata, TopicInfo, TopicPartition)

Acks = Literal[0, 1, "all"]
RebalanceCallback = Callable[[list[TopicPartition]], None]


class GroupConsumer(Protocol):
    """One member of a consumer group, subscribed to some topics."""

    @property
    def group_id(self) -> str: ...

    @property
    def member_id(self) -> str:
        """This member's id in the group (on Kafka: "" before the first join)."""
        ...

    def assignment(self) -> set[TopicPartition]:
        """The partitions this member owns right now."""

    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[Message]:
        """Up to ``max_records`` messages from owned partitions, in offset order per
        partition and each partition's messages together, waiting at most ``timeout``
        seconds for the first one.

        Also runs the group's housekeeping: heartbeats, joining a rebalance, calling
        ``on_revoke``/``on_assign``. Call it at least every ``session_timeout / 3``.
        """

    def prepare_wait(self) -> tuple[int | None, float]:
        """Before waiting for records (a ``poll`` returned none): ``(fd, seconds)``.
        Wait until ``fd`` is readable or ``seconds`` passed, then ``poll``; ``fd`` is
        None when the driver has no descriptor to wait on (then sleep a short while,
        at most ``seconds``). ``seconds`` is 0 when ``poll`` must run again at once."""

    def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        """Durably store committed offsets (the offset of the *next* message to read).
        ``None`` commits the current positions."""

    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset of a partition, or None if there is none."""

    def position(self, tp: TopicPartition) -> int:
        """The offset of the next message ``poll`` returns for this partition."""

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make the next ``poll`` of this partition start at ``offset``."""

    def pause(self, tps: Iterable[TopicPartition]) -> None:
        """Stop returning messages of these partitions until ``resume``."""

    def resume(self, tps: Iterable[TopicPartition]) -> None:
        """Undo ``pause``."""

    def close(self, commit: bool = True) -> None:
        """Leave the group (its partitions go to the other members at once)."""


class Broker(Protocol):
    """A connection to one broker (embedded log, memory, or a Kafka cluster)."""

    url: str
    default_partitions: int

    # -- topics ------------------------------------------------------------------
    def create_topic(self, name: str, partitions: int | None = None,
                     config: dict[str, str] | None = None,
                     replication_factor: int = 1, exist_ok: bool = True) -> None:
        """Create a topic. ``config`` holds Kafka topic configs as strings
        (``retention.ms``, ``cleanup.policy``, ``segment.bytes``,
        ``message.timestamp.type``, ``retention.bytes``)."""

    def delete_topic(self, name: str) -> None: ...

    def list_topics(self) -> list[str]: ...

    def describe_topic(self, name: str) -> TopicInfo:
        """Partitions, config, start and end offsets. Raises ``UnknownTopic``."""

    def partition_count(self, name: str) -> int | None:
        """Number of partitions, or None if the topic does not exist."""

    def cleanup(self, name: str) -> None:
        """Run retention and compaction on the topic now (no-op where the broker does
        its own, as Kafka does)."""

    # -- produce -----------------------------------------------------------------
    def produce(self, topic: str, records: Sequence[OutgoingRecord],
                acks: Acks = 1) -> Sequence[RecordMetadata]:
        """Append records (creating the topic if missing, as Kafka's auto-create does)
        and return their metadata, in order, once acknowledged."""

    # -- fetch without a group (changelog restore, ``streamkit tail``) ------------
    def fetch(self, tp: TopicPartition, offset: int, max_records: int = 1000,
              timeout: float = 0.0, isolation_level: str = "read_uncommitted"
              ) -> list[Message]:
        """Messages of one partition starting at ``offset`` (the first offset >= it
        after compaction), waiting up to ``timeout`` for one. ``read_committed``:
        none of an aborted or open transaction, none past the last stable offset."""

    def offsets(self, tp: TopicPartition) -> tuple[int, int]:
        """(start offset, end offset) of a partition."""

    def offset_for_time(self, tp: TopicPartition, timestamp: int
                        ) -> OffsetAndTimestamp | None:
        """The first record, in offset order, whose timestamp is at or after
        ``timestamp`` (ms): its offset and timestamp; None if there is none."""

    # -- consumer groups ---------------------------------------------------------
    def group_consumer(self, group_id: str, topics: Sequence[str], *,
                       auto_offset_reset: Literal["earliest", "latest"] = "earliest",
                       enable_auto_commit: bool = False,
                       auto_commit_interval: float = 5.0,
                       session_timeout: float = 10.0,
                       on_assign: RebalanceCallback | None = None,
                       on_revoke: RebalanceCallback | None = None,
                       copartitioned: bool = False,
                       isolation_level: str = "read_uncommitted",
                       on_lost: RebalanceCallback | None = None) -> GroupConsumer:
        """Join ``group_id`` subscribed to ``topics`` (created if missing).

        ``on_lost`` gets the partitions this member lost without giving them up: the
        group removed it (its session expired, as when its process was paused), so
        their new owner may be reading them already and nothing of them may be
        committed. Without ``on_lost``, ``on_revoke`` gets them (Kafka's default).

        ``copartitioned=True``: a member gets the same partition numbers of every
        topic, as tables need (their partition N goes with partition N of any topic).
        """

    def list_groups(self) -> list[str]: ...

    def group_offsets(self, group_id: str) -> list[GroupOffset]:
        """Committed offset, end offset and lag of every partition the group has
        committed."""

    def commit_offsets(self, group_id: str, offsets: dict[TopicPartition, int]) -> None:
        """Store committed offsets of ``group_id`` (next offsets to read) without being
        a member of the group: a consumer whose partitions were assigned by hand."""

    def delete_group(self, group_id: str) -> None:
        """Forget a group's committed offsets (refused while members are alive)."""

    def close(self) -> None: ...


class Transaction(Protocol):
    """A transactional producer (``exactly_once``): sends and consumer offsets that
    become visible together at ``commit``, or not at all."""

    def begin(self) -> None:
        """Start the next transaction."""
        ...

    def send(self, topic: str, records: Sequence[OutgoingRecord]) -> list[RecordMetadata]:
        """Write ``records`` inside the open transaction."""
        ...

    # ``consumer`` is a group consumer of the same broker (Kafka needs its group's
    # metadata), which this protocol cannot name for every driver
    def send_offsets(self, consumer: Any, offsets: dict[TopicPartition, int]) -> None:
        """Commit ``offsets`` of ``consumer``'s group as part of the transaction."""
        ...

    def commit(self) -> None:
        """Make the open transaction visible."""
        ...

    def abort(self) -> None:
        """Roll the open transaction back: none of it becomes visible."""
        ...

    def close(self) -> None:
        """Abort what is not committed and let go of the producer."""
        ...


@runtime_checkable
class TransactionalBroker(Broker, Protocol):
    """A broker with transactions (``kafka://``, ``log://``, ``memory://``)."""

    def transactional_producer(self, transactional_id: str) -> Transaction:
        """A producer for ``transactional_id``; a newer one fences it."""
        ...


@runtime_checkable
class WatchedBroker(Broker, Protocol):
    """A broker whose appends a reader can wait for (``log://``, ``memory://``)."""

    def append_watch(self) -> AppendWatch:
        """A watch on partitions of this broker (``streamkit.log.watch``); the caller
        closes it."""
        ...


@runtime_checkable
class AdminBroker(Broker, Protocol):
    """A broker whose topics can gain partitions and whose topic configs can be read
    and changed (``log://``, ``memory://``): what ``streamkit broker``'s
    CreatePartitions, DescribeConfigs and AlterConfigs answers use."""

    def create_partitions(self, name: str, count: int) -> None:
        """Grow topic ``name`` to ``count`` partitions. Raises ``UnknownTopic``, or
        ``InvalidConfig`` unless ``count`` is more than it has."""
        ...

    def topic_config(self, name: str) -> dict[str, str]:
        """The configs set on the topic, without the defaults ``describe_topic``
        fills in. Raises ``UnknownTopic``."""
        ...

    def alter_topic_config(self, name: str, config: Mapping[str, object],
                           delete: Sequence[str] = ()) -> None:
        """Set ``config`` on the topic (merged) and remove the configs in ``delete``."""
        ...
