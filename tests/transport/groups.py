"""Helpers of the consumer-group tests (test_group_contract.py, test_kafka_groups.py):
timeouts and polling loops long enough for a Kafka group join."""
from __future__ import annotations

import time
import uuid

from streamkit.types import OutgoingRecord

SESSION = 3.0   # seconds; keeps tansu's group joins at 1-3 s


def _group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def _poll_until(consumers, done, timeout=20.0):
    """Poll every consumer (keeps them in the group) until ``done()`` or timeout;
    returns the messages each got."""
    got = [[] for _ in consumers]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i, consumer in enumerate(consumers):
            got[i].extend(consumer.poll(500, timeout=0.05))
        if done(got):
            return got
    raise AssertionError(f"condition not met in {timeout}s; got {[len(g) for g in got]}, "
                         f"assignments {[sorted(c.assignment()) for c in consumers]}")


def _fill(broker, topic, n=40, partitions=4):
    broker.create_topic(topic, partitions=partitions)
    broker.produce(topic, [OutgoingRecord(f"k{i}".encode(), f"v{i}".encode(),
                                          partition=i % partitions) for i in range(n)])
