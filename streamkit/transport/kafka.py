"""The ``kafka://`` broker: Apache Kafka (or any Kafka-protocol broker) through
confluent-kafka.

Kafka is the engine here: partitions, replication, retention, compaction and group
coordination all run in the cluster; this driver only maps the ``Broker`` protocol onto
librdkafka's producer, consumer and admin clients. See docs/kafka.md.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar, cast

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, \
    KafkaException, Producer
from confluent_kafka import TopicPartition as KTP
from confluent_kafka import Message as KafkaMessage
from confluent_kafka.admin import AdminClient, ClusterMetadata, ConfigResource, NewTopic

from streamkit import errors
from streamkit.names import check_topic_name
from streamkit.transport.base import Acks, RebalanceCallback
from streamkit.transport.kafka_common import KafkaConfig, bootstrap_servers, broker_error, \
    client_config, error_code, make_client, retrying
from streamkit.transport.kafka_consumer import EndOffsets, Fetcher, KafkaGroupConsumer
from streamkit.transport.kafka_tx import KafkaTransactionalProducer
from streamkit.types import (GroupOffset, Message, OffsetAndTimestamp, OutgoingRecord,
                             RecordMetadata, TopicInfo, TopicPartition)

__all__ = ["KafkaBroker"]

T = TypeVar("T")

_ACKS = {0: 0, 1: 1, "all": -1, -1: -1, "0": 0, "1": 1, "-1": -1}


#: a group coordinator's errors that pass: it is loading the group's offsets, or the
#: group moved to another broker (librdkafka finds the new one)
_COORDINATOR_MOVING = {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
                       KafkaError.COORDINATOR_LOAD_IN_PROGRESS}


def _checked(parts: list[KTP] | None) -> list[KTP]:
    """``parts`` of an offsets answer, raising the first partition's error: such an
    answer succeeds as a whole while each partition can fail (a commit not stored)."""
    for part in parts or []:
        if part.error is not None:
            raise KafkaException(part.error)
    return parts or []


class KafkaBroker:
    """A connection to a Kafka cluster, implementing ``streamkit.transport.Broker``.

    ``config`` holds librdkafka settings (``security.protocol``, ``sasl.*``,
    ``ssl.*``, ...) given to every client; ``{"producer": {...}, "consumer": {...},
    "admin": {...}}`` sections apply to one kind of client only. ``timeout`` bounds
    every admin and metadata wait and a produce's delivery (seconds; librdkafka's
    ``socket.timeout.ms`` in ``config`` sets it too).
    """

    def __init__(self, url: str, *, default_partitions: int = 1,
                 config: KafkaConfig | None = None, timeout: float | None = None) -> None:
        self.url = url
        self.servers = bootstrap_servers(url)
        self.default_partitions = default_partitions
        self._config = dict(config or {})
        if timeout is None:
            timeout = float(self._config.get("socket.timeout.ms", 10_000)) / 1000
        self.timeout = timeout
        self._base = {"bootstrap.servers": self.servers}
        self._admin_client: AdminClient | None = make_client(
            AdminClient, client_config(self._base, self._config, "admin"), "admin")
        self._producers: dict[int, Producer] = {}
        #: group-less readers, one per isolation level asked for
        self._fetchers: dict[str, Fetcher] = {}
        #: librdkafka's metadata of group ids named without a member (per id)
        self._group_metadata: dict[str, object] = {}
        self._end_offsets: EndOffsets | None = None
        self._known_topics: set[str] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"<KafkaBroker {self.servers}>"

    @property
    def _admin(self) -> AdminClient:
        if self._admin_client is None:
            raise errors.BrokerError(f"{self!r} is closed")
        return self._admin_client

    # -- topics ------------------------------------------------------------------
    def _metadata(self, what: str) -> ClusterMetadata:
        self._admin.poll(0)   # hands librdkafka's queued log lines to the logger
        try:
            return self._admin.list_topics(timeout=self.timeout)
        except KafkaException as exc:
            raise broker_error(exc, what, self.servers) from None

    def create_topic(self, name: str, partitions: int | None = None,
                     config: dict[str, str] | None = None,
                     replication_factor: int = 1, exist_ok: bool = True) -> None:
        """Create a topic with ``partitions`` (default ``default_partitions``),
        replication factor and topic ``config``; waits until every partition's leader
        serves it (a record sent with acks=0 before then is dropped by the broker)."""
        check_topic_name(name)
        if partitions is None:
            partitions = self.default_partitions
        if not isinstance(partitions, int) or partitions < 1:
            raise errors.InvalidConfig(f"create topic {name!r}: partitions={partitions!r} "
                                       "must be a whole number >= 1")
        what = f"create topic {name!r}"
        topic = NewTopic(name, num_partitions=partitions,
                         replication_factor=replication_factor,
                         config={k: str(v) for k, v in (config or {}).items()})
        future = self._admin.create_topics([topic], request_timeout=self.timeout,
                                           operation_timeout=self.timeout)[name]
        try:
            future.result(timeout=self.timeout + 1)
        except KafkaException as exc:
            if error_code(exc) == KafkaError.TOPIC_ALREADY_EXISTS and exist_ok:
                self._known_topics.add(name)
                return
            raise broker_error(exc, what, self.servers) from None
        self._wait_for(name, present=True)
        # Kafka shows a new topic in its metadata a moment before the leaders take
        # their partitions: until then they refuse list-offsets and drop acks=0 sends.
        self._offsets_reader().wait_for_leaders(
            [TopicPartition(name, p) for p in range(partitions)], self.timeout)
        self._known_topics.add(name)

    def _wait_for(self, name: str, present: bool) -> None:
        # Kafka creates and deletes topics asynchronously: wait until metadata agrees.
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            topic = self._metadata(f"metadata of {name!r}").topics.get(name)
            if (topic is not None and topic.error is None) == present:
                return
            time.sleep(0.05)

    def delete_topic(self, name: str) -> None:
        """Delete a topic; raises ``UnknownTopic`` if there is none."""
        self._close_readers_of(name)
        future = self._admin.delete_topics([name], request_timeout=self.timeout,
                                           operation_timeout=self.timeout)[name]
        try:
            future.result(timeout=self.timeout + 1)
        except KafkaException as exc:
            raise broker_error(exc, f"delete topic {name!r}", self.servers) from None
        self._known_topics.discard(name)
        self._wait_for(name, present=False)

    def _close_readers_of(self, topic: str) -> None:
        # A librdkafka consumer that fetched a topic lately crashes (SIGSEGV) when the
        # topic is deleted under it, at least on tansu, even after unassigning it.
        # Closing the client is safe; the next fetch/offsets call opens a new one.
        for level, fetcher in list(self._fetchers.items()):
            if fetcher.has_read(topic):
                fetcher.close()
                del self._fetchers[level]
        if self._end_offsets is not None and topic in self._end_offsets.topics:
            self._end_offsets.close()
            self._end_offsets = None

    def list_topics(self) -> list[str]:
        """Names of the cluster's topics, without Kafka's internal ``__*`` topics."""
        topics = self._metadata("list topics").topics
        return sorted(t for t in topics if not t.startswith("__"))

    def partition_count(self, name: str) -> int | None:
        """Number of partitions of ``name``, or None if there is no such topic."""
        topic = self._metadata(f"metadata of {name!r}").topics.get(name)
        if topic is None or topic.error is not None:
            return None
        return len(topic.partitions)

    def describe_topic(self, name: str) -> TopicInfo:
        """Partitions, the topic's configs as the cluster reports them, and start/end
        offsets per partition."""
        count = self.partition_count(name)
        if count is None:
            raise errors.UnknownTopic(f"describe topic {name!r}: no such topic on "
                                      f"{self.servers}")
        resource = ConfigResource("topic", name)
        try:
            entries = self._admin.describe_configs(
                [resource], request_timeout=self.timeout)[resource].result(
                    timeout=self.timeout + 1)
        except KafkaException as exc:
            raise broker_error(exc, f"configs of topic {name!r}", self.servers) from None
        config = {k: e.value for k, e in entries.items()
                  if e.value is not None and not e.is_sensitive}
        offsets = self._offsets_of([TopicPartition(name, p) for p in range(count)])
        return TopicInfo(name, count, config,
                         [offsets[TopicPartition(name, p)][0] for p in range(count)],
                         [offsets[TopicPartition(name, p)][1] for p in range(count)])

    def cleanup(self, name: str) -> None:
        """No-op: Kafka enforces retention and compaction itself, on its own schedule."""

    # -- produce -----------------------------------------------------------------
    def _producer(self, acks: Acks) -> Producer:
        try:
            level = _ACKS[acks]
        except (KeyError, TypeError):
            raise errors.InvalidConfig(f"acks={acks!r}: use 0, 1 or 'all'") from None
        producer = self._producers.get(level)
        if producer is None:
            defaults = {"message.timeout.ms": int(self.timeout * 1000), "linger.ms": 5}
            base = {**self._base, "acks": level, "partitioner": "murmur2_random"}
            producer = make_client(
                Producer, client_config(base, self._config, "producer", defaults), "producer")
            self._producers[level] = producer
        return producer

    def _ensure_topic(self, topic: str) -> None:
        # Kafka clusters often run with auto-create off: create it the way the
        # embedded log would, with default_partitions.
        if topic not in self._known_topics:
            if self.partition_count(topic) is None:
                self.create_topic(topic, self.default_partitions, exist_ok=True)
            self._known_topics.add(topic)

    def produce(self, topic: str, records: Sequence[OutgoingRecord],
                acks: Acks = 1) -> list[RecordMetadata]:
        """Send ``records`` and return where they landed, once delivered as ``acks``
        says (with ``acks=0`` offsets are -1: nobody reports them)."""
        if not records:
            return []
        self._ensure_topic(topic)
        return self._deliver(self._producer(acks), topic, records)

    def _deliver(self, producer: Producer, topic: str,
                 records: Sequence[OutgoingRecord]) -> list[RecordMetadata]:
        results: list[RecordMetadata | None] = [None] * len(records)
        failures: list[tuple[int, KafkaError, KafkaMessage]] = []

        def delivered(i: int) -> Callable[[KafkaError | None, KafkaMessage], None]:
            def report(err: KafkaError | None, msg: KafkaMessage) -> None:
                if err is not None:
                    failures.append((i, err, msg))
                offset, partition = msg.offset(), msg.partition()
                results[i] = RecordMetadata(topic, -1 if partition is None else partition,
                                            -1 if offset is None or offset < 0 else offset,
                                            msg.timestamp()[1])
            return report

        for i, rec in enumerate(records):
            while True:
                try:
                    producer.produce(topic, rec.value, rec.key,
                                     partition=-1 if rec.partition is None else rec.partition,
                                     on_delivery=delivered(i),
                                     timestamp=rec.timestamp or 0,
                                     # (the stub's list is of str | bytes | None values,
                                     # a list of bytes | None is one to librdkafka)
                                     headers=rec.headers or None)  # type: ignore[arg-type]
                    break
                except BufferError:
                    producer.poll(0.05)   # local queue full: let deliveries drain it
                except KafkaException as exc:
                    raise broker_error(exc, f"produce to {topic}[{rec.partition}]",
                                       self.servers) from None
        self._wait_delivered(producer, results, topic)
        if failures:
            i, err, msg = failures[0]
            raise errors.BrokerError(
                f"produce to {topic}[{msg.partition()}] on {self.servers} failed for "
                f"{len(failures)} of {len(records)} records (first: record {i}): "
                f"{err.str()}")
        return cast(list[RecordMetadata], results)     # _wait_delivered filled it

    def transactional_producer(self, transactional_id: str, timeout_ms: int | None = None
                               ) -> KafkaTransactionalProducer:
        """A producer whose sends and consumer offsets commit atomically (Kafka
        transactions, for ``exactly_once`` and ``streamkit.Producer``). One per
        ``transactional_id`` at a time: a new one fences the old. ``timeout_ms`` is
        ``transaction.timeout.ms`` (60 s unless the config sets it)."""
        defaults = {"transaction.timeout.ms": 60_000}
        if timeout_ms is not None:
            defaults["transaction.timeout.ms"] = timeout_ms
        base = {**self._base, "transactional.id": transactional_id,
                "partitioner": "murmur2_random", "acks": -1, "enable.idempotence": True}
        conf = client_config(base, self._config, "producer", defaults)
        return KafkaTransactionalProducer(conf, transactional_id, self.servers,
                                          self.timeout, self._deliver, self._ensure_topic)

    def group_metadata(self, group_id: str) -> object:
        """librdkafka's group metadata of ``group_id`` without a member (what
        ``send_offsets_to_transaction`` takes for a bare group id): confluent-kafka
        builds it only from a consumer, so from one that has the group's id and never
        joins it (no round trip; kept per id)."""
        metadata = self._group_metadata.get(group_id)
        if metadata is None:
            consumer = make_client(Consumer, self._consumer_conf({"group.id": group_id}),
                                   "consumer")
            try:
                metadata = consumer.consumer_group_metadata()
            finally:
                consumer.close()
            self._group_metadata[group_id] = metadata
        return metadata

    def _wait_delivered(self, producer: Producer, results: list[RecordMetadata | None],
                        topic: str) -> None:
        # message.timeout.ms bounds each record, so every callback fires eventually;
        # the deadline only guards against a user config without that bound.
        deadline = time.monotonic() + max(self.timeout * 2, 30.0)
        while None in results:
            producer.flush(0.5)
            if time.monotonic() > deadline:
                raise errors.KafkaTimeoutError(
                    f"produce to {topic!r}: {results.count(None)} records not delivered "
                    f"by {self.servers} in time")

    # -- fetch without a group ----------------------------------------------------
    def _consumer_conf(self, streamkit_conf: KafkaConfig,
                       defaults: KafkaConfig | None = None) -> KafkaConfig:
        return client_config({**self._base, **streamkit_conf}, self._config, "consumer",
                             {"fetch.wait.max.ms": 100, **(defaults or {})})

    def fetch(self, tp: TopicPartition, offset: int, max_records: int = 1000,
              timeout: float = 0.0, isolation_level: str = "read_committed"
              ) -> list[Message]:
        """Messages of one partition from ``offset``, waiting up to ``timeout`` for new
        ones. Records the partition already holds are returned even with ``timeout=0``
        (the call then waits for the fetch round trip, as reading a file would).
        ``isolation_level`` is librdkafka's ``isolation.level`` (read_committed, its
        default, unless told)."""
        fetcher = self._fetchers.get(isolation_level)
        if fetcher is None:
            conf = {**Fetcher.config(), "isolation.level": isolation_level}
            fetcher = self._fetchers[isolation_level] = Fetcher(
                self._consumer_conf(conf), self.servers, catch_up=self.timeout)
        return fetcher.fetch(tp, offset, max_records, timeout)

    def _offsets_reader(self) -> EndOffsets:
        if self._end_offsets is None:
            self._end_offsets = EndOffsets(self._consumer_conf(EndOffsets.config()),
                                           self.servers)
        return self._end_offsets

    def _offsets_of(self, tps: list[TopicPartition]) -> dict[TopicPartition, tuple[int, int]]:
        return self._offsets_reader().offsets(tps, self.timeout)

    def offset_for_time(self, tp: TopicPartition, timestamp: int
                        ) -> OffsetAndTimestamp | None:
        """The first record whose timestamp is at or after ``timestamp`` (the cluster's
        time index), with that record's timestamp; None if there is none.

        The records from the cluster's answer on are read up to the first that is late
        enough: Kafka answers with that record, where one read suffices, but some
        Kafka-protocol brokers (tansu) answer with the first offset of its batch."""
        offset = self._offsets_reader().offset_for_time(tp, timestamp, self.timeout)
        while offset is not None:
            found = self.fetch(tp, offset, 500)     # (what it holds: no wait at the end)
            for message in found:
                if message.timestamp >= timestamp:
                    return OffsetAndTimestamp(message.offset, message.timestamp)
            offset = found[-1].offset + 1 if found else None
        return None

    def offsets(self, tp: TopicPartition) -> tuple[int, int]:
        """(start offset, end offset) of a partition."""
        return self._offsets_of([tp])[tp]

    # -- consumer groups ---------------------------------------------------------
    def group_consumer(self, group_id: str, topics: Sequence[str], *,
                       auto_offset_reset: Literal["earliest", "latest"] = "earliest",
                       enable_auto_commit: bool = False,
                       auto_commit_interval: float = 5.0,
                       session_timeout: float = 10.0,
                       on_assign: RebalanceCallback | None = None,
                       on_revoke: RebalanceCallback | None = None,
                       copartitioned: bool = False,
                       isolation_level: str = "read_committed",
                       on_lost: RebalanceCallback | None = None) -> KafkaGroupConsumer:
        """Join ``group_id`` on ``topics`` (created if missing). Kafka's group
        coordinator assigns partitions; ``on_revoke``/``on_assign`` get the partitions
        given up / taken in each rebalance. ``copartitioned=True`` uses the range
        assignor (eager): cooperative-sticky, the default, balances partitions without
        giving a member the same numbers of every topic (decision 601)."""
        if auto_offset_reset not in ("earliest", "latest"):
            raise errors.InvalidConfig(f"auto_offset_reset={auto_offset_reset!r}: use "
                                       "'earliest' or 'latest'")
        for topic in topics:
            self._ensure_topic(topic)
        session_ms = int(session_timeout * 1000)
        conf = self._consumer_conf({
            "group.id": group_id,
            "auto.offset.reset": auto_offset_reset,
            "enable.auto.commit": enable_auto_commit,
            # librdkafka stores the position of each message consume() hands over, so
            # an auto commit covers what was consumed, never more.
            "enable.auto.offset.store": True,
            "auto.commit.interval.ms": int(auto_commit_interval * 1000),
            "session.timeout.ms": session_ms,
        }, {"heartbeat.interval.ms": max(100, session_ms // 4),     # (the user's wins)
            "isolation.level": isolation_level})
        conf.setdefault("partition.assignment.strategy",
                        "range" if copartitioned else "cooperative-sticky")
        return KafkaGroupConsumer(conf, group_id, topics, servers=self.servers,
                                  enable_auto_commit=enable_auto_commit,
                                  on_assign=on_assign, on_revoke=on_revoke,
                                  on_lost=on_lost, auto_offset_reset=auto_offset_reset,
                                  offsets=self.offsets)

    def list_groups(self) -> list[str]:
        """Ids of the cluster's consumer groups."""
        try:
            listing = self._admin.list_consumer_groups(
                request_timeout=self.timeout).result(timeout=self.timeout + 1)
        except KafkaException as exc:
            raise broker_error(exc, "list groups", self.servers) from None
        return sorted(g.group_id for g in listing.valid)

    def group_offsets(self, group_id: str) -> list[GroupOffset]:
        """Committed offset, end offset and lag of each partition ``group_id`` has
        committed.

        Asked by a consumer of the group that never joins it, over every partition of
        the cluster's topics, not by the admin client's ListConsumerGroupOffsets:
        librdkafka crashes the process when that answer carries a coordinator error
        (a coordinator still loading its offsets, as just after a broker starts, or
        one that moved), handing it to a consumer group the admin client does not
        have (librdkafka issue 5040). A consumer's OffsetFetch retries those."""
        metadata = self._metadata(f"offsets of group {group_id!r}")
        parts = [KTP(name, p) for name, topic in sorted(metadata.topics.items())
                 if not name.startswith("__") and topic.error is None
                 for p in sorted(topic.partitions)]
        if not parts:
            return []
        consumer = make_client(Consumer, self._consumer_conf({"group.id": group_id}),
                               "consumer")
        try:
            found = self._with_coordinator(
                f"offsets of group {group_id!r}",
                lambda: _checked(consumer.committed(parts, timeout=self.timeout)))
        finally:
            consumer.close()
        committed = {TopicPartition(p.topic, p.partition): p.offset
                     for p in found if p.offset >= 0}
        if not committed:
            return []
        ends = self._offsets_of(sorted(committed))
        return [GroupOffset(tp.topic, tp.partition, off, ends[tp][1])
                for tp, off in sorted(committed.items())]

    def commit_offsets(self, group_id: str, offsets: dict[TopicPartition, int]) -> None:
        """Store committed offsets of ``group_id`` without being a member of it (a
        consumer with manually assigned partitions); Kafka refuses it while the group
        has live members."""
        request = [ConsumerGroupTopicPartitions(
            group_id, [KTP(tp.topic, tp.partition, off) for tp, off in offsets.items()])]
        self._with_coordinator(
            f"commit offsets of group {group_id!r}",
            lambda: _checked(self._admin.alter_consumer_group_offsets(
                request, request_timeout=self.timeout)[group_id].result(
                    timeout=self.timeout + 1).topic_partitions))

    def _with_coordinator(self, what: str, call: Callable[[], T]) -> T:
        """``call()``, again while the group's coordinator is loading or moving (as
        for a few seconds after a broker starts), up to the broker's timeout."""
        return retrying(call, _COORDINATOR_MOVING, time.monotonic() + self.timeout, what,
                        self.servers, pause=0.1)

    def delete_group(self, group_id: str) -> None:
        """Delete the group and its committed offsets; refused (``BrokerError``) while
        it has live members. A group that does not exist is left alone."""
        try:
            self._admin.delete_consumer_groups(
                [group_id], request_timeout=self.timeout)[group_id].result(
                    timeout=self.timeout + 1)
        except KafkaException as exc:
            code = error_code(exc)
            if code == KafkaError.GROUP_ID_NOT_FOUND:
                return
            if code == KafkaError.NON_EMPTY_GROUP:
                raise errors.BrokerError(
                    f"delete group {group_id!r}: refused, the group has live members "
                    f"on {self.servers}") from None
            raise broker_error(exc, f"delete group {group_id!r}", self.servers) from None

    # -- lifecycle ---------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record handed to librdkafka is delivered (``produce``
        already waits; this is for symmetry with the embedded log's acks=0 queue)."""
        for producer in self._producers.values():
            producer.flush(self.timeout if timeout is None else timeout)

    def close(self) -> None:
        """Deliver what is still queued and free the clients."""
        if self._closed:
            return
        self._closed = True
        for producer in self._producers.values():
            producer.flush(self.timeout)
        self._producers.clear()
        for fetcher in self._fetchers.values():
            fetcher.close()
        self._fetchers.clear()
        if self._end_offsets is not None:
            self._end_offsets.close()
            self._end_offsets = None
        # librdkafka's admin client has no close: it is freed (its threads joined, its
        # sockets closed) with the last reference to it
        self._admin_client = None

    def __enter__(self) -> KafkaBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
