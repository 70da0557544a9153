"""A second member joins a group whose first member owns every partition and is
consuming: with the default cooperative-sticky assignor the first member gives up only
the partitions that move and keeps consuming the others through the rebalance; with
the eager range assignor (``copartitioned=True``) it gives up everything first."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import pytest

from streamkit.transport.kafka import KafkaBroker
from streamkit.transport.kafka_consumer import KafkaGroupConsumer
from streamkit.types import OutgoingRecord

from .groups import SESSION

pytestmark = pytest.mark.kafka

PARTITIONS = 4


@dataclass
class Member:
    """A group member and what it saw: each rebalance callback with the partitions
    it got and the member's assignment then, its assignment after each poll, and the
    partition of each record with when it arrived."""
    consumer: KafkaGroupConsumer | None = None
    callbacks: list[tuple[str, float, set[int], set[int]]] = field(default_factory=list)
    owned: list[tuple[float, set[int]]] = field(default_factory=list)
    records: list[tuple[float, int, int]] = field(default_factory=list)
    final: set[int] = field(default_factory=set)    # owned when it left the group

    def join(self, broker: KafkaBroker, group: str, topic: str,
             copartitioned: bool) -> Member:
        self.consumer = broker.group_consumer(
            group, [topic], session_timeout=SESSION, copartitioned=copartitioned,
            auto_offset_reset="latest",
            on_assign=lambda tps: self._called("assign", tps),
            on_revoke=lambda tps: self._called("revoke", tps))
        return self

    def _called(self, kind: str, tps) -> None:
        if self.consumer is None:
            return      # leaving the group: close() revokes what is left
        self.callbacks.append((kind, time.monotonic(), {tp.partition for tp in tps},
                               self.partitions()))
        if kind == "revoke":
            # as a worker does: commit what was consumed of the partitions given up
            self.consumer.commit({tp: self.consumer.position(tp) for tp in tps})

    def partitions(self) -> set[int]:
        assert self.consumer is not None
        return {tp.partition for tp in self.consumer.assignment()}

    def poll(self) -> None:
        assert self.consumer is not None
        for msg in self.consumer.poll(500, timeout=0.02):
            self.records.append((time.monotonic(), msg.partition, msg.offset))
        self.owned.append((time.monotonic(), self.partitions()))

    def leave(self) -> None:
        if self.consumer is not None:
            consumer, self.consumer = self.consumer, None
            self.final = {tp.partition for tp in consumer.assignment()}
            consumer.close()

    def had_records_since(self, when: float) -> bool:
        """Whether records of each partition owned came since ``when``."""
        return self.partitions() <= {p for t, p, _ in self.records if t > when}

    def rebalances(self) -> list[tuple[str, set[int], set[int]]]:
        """Each callback: revoke or assign, its partitions, the partitions owned."""
        return [(kind, parts, owned) for kind, _, parts, owned in self.callbacks]

    def revoked(self) -> list[set[int]]:
        return [parts for kind, _, parts, _ in self.callbacks if kind == "revoke"]


def _join_while_consuming(url: str, topic: str, copartitioned: bool
                          ) -> tuple[Member, Member]:
    """A owns every partition and consumes, records arriving on each; then B joins.
    Returns once A and B own half each and each has had records of its every
    partition since."""
    broker = KafkaBroker(url)
    broker.create_topic(topic, partitions=PARTITIONS)
    group = f"g-{uuid.uuid4().hex[:8]}"
    a = Member().join(broker, group, topic, copartitioned)
    b: Member | None = None
    every = set(range(PARTITIONS))
    one_each = [OutgoingRecord(b"k", b"v", partition=p) for p in range(PARTITIONS)]

    def split() -> bool:
        half = PARTITIONS // 2
        return b is not None and len(a.partitions()) == len(b.partitions()) == half

    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            broker.produce(topic, one_each)     # records keep arriving on every partition
            a.poll()
            if b is None and {p for _, p, _ in a.records} == every:
                b = Member().join(broker, group, topic, copartitioned)
            elif b is not None:
                b.poll()
                if split() and all(m.had_records_since(b.callbacks[-1][1]) for m in (a, b)):
                    break
        assert b is not None, f"A never had records of all partitions: {a.records}"
        assert split(), f"no split: A owns {a.partitions()}, B owns {b.partitions()}"
        return a, b
    finally:
        for member in (a, b):
            if member is not None:
                member.leave()
        broker.close()


def _handed_over_once(a: Member, b: Member) -> None:
    """Each partition's records since A started were handed to A or B once each, none
    skipped: the offsets A committed when it gave a partition up are where B went on."""
    for p in range(PARTITIONS):
        offsets = sorted(o for m in (a, b) for _, q, o in m.records if q == p)
        assert offsets == list(range(offsets[0], offsets[-1] + 1)), (p, offsets)


def test_cooperative_join_moves_only_the_partitions_the_new_member_takes(tansu,
                                                                        topic_name):
    a, b = _join_while_consuming(tansu, topic_name, copartitioned=False)
    kept, moved = a.final, b.final
    every = set(range(PARTITIONS))
    assert kept | moved == every and not kept & moved
    # A was told to give up the moved partitions only, while it still owned all; it
    # was never assigned its kept ones again (it never lost them).
    assert a.revoked() and all(parts <= moved for parts in a.revoked()), a.callbacks
    assert set().union(*a.revoked()) == moved
    assert a.rebalances() == [("assign", every, set())] + \
        [("revoke", parts, every) for parts in a.revoked()]
    assert b.rebalances() == [("assign", moved, set())]
    # It owned the kept partitions after every poll since it first owned everything...
    first_full = next(i for i, (_, owned) in enumerate(a.owned) if owned == every)
    assert all(kept <= owned for _, owned in a.owned[first_full:])
    # ...and was handed records of them while B was joining: between its revoke and
    # B's assignment.
    revoked_at = a.callbacks[1][1]
    b_assigned_at = b.callbacks[0][1]
    assert any(revoked_at < t < b_assigned_at and p in kept for t, p, _ in a.records), \
        (revoked_at, b_assigned_at, a.records[-20:])
    _handed_over_once(a, b)


def test_eager_join_revokes_every_partition_first(tansu, topic_name):
    a, b = _join_while_consuming(tansu, topic_name, copartitioned=True)
    kept, moved = a.final, b.final
    every = set(range(PARTITIONS))
    assert kept | moved == every and not kept & moved
    # The range assignor is eager: A gives up everything, and owns nothing when it is
    # given its half back.
    assert a.rebalances() == [("assign", every, set()), ("revoke", every, every),
                              ("assign", kept, set())]
    assert b.rebalances() == [("assign", moved, set())]
    revoked_at, reassigned_at = a.callbacks[1][1], a.callbacks[2][1]
    assert not any(revoked_at < t < reassigned_at for t, _, _ in a.records)
    assert all(not owned for t, owned in a.owned if revoked_at < t < reassigned_at)
    _handed_over_once(a, b)
