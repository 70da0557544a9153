"""One consumer group of a streamkit ``log://`` consumer and a kafka-python consumer
over ``streamkit broker``: they share the topic's partitions (each read by one member
at a time), and every record is read once by one of them."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

kafka = pytest.importorskip("kafka", reason="kafka-python is not installed")

from kafka import KafkaAdminClient, KafkaConsumer  # noqa: E402

import streamkit  # noqa: E402
from tests.wire.conftest import Wire  # noqa: E402


class LogWorker:
    """A ``log://`` consumer of group "mixed" polling in a thread (as a worker would
    in its own process), committing after every poll."""

    def __init__(self, wire: Wire) -> None:
        self.consumer = streamkit.Consumer("orders", broker="log://", datadir=wire.datadir,
                                           group_id="mixed", auto_offset_reset="earliest",
                                           enable_auto_commit=False)
        self.values: list[bytes] = []
        self.assignment: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for messages in self.consumer.poll(timeout_ms=50).values():
                self.values += [m.value for m in messages]
            self.consumer.commit()
            self.assignment = {tp.partition for tp in self.consumer.assignment()}
        self.consumer.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def wait_for(condition: Any, seconds: float = 15, step: Any = None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        if step is not None:
            step()
        else:
            time.sleep(0.02)


@pytest.fixture
def worker(wire: Wire) -> Iterator[LogWorker]:
    wire.log.create_topic("orders", 4)
    member = LogWorker(wire)
    yield member
    member.close()


def write(wire: Wire, start: int, count: int) -> None:
    producer = streamkit.Producer(broker="log://", datadir=wire.datadir)
    for i in range(start, start + count):
        producer.send("orders", value=b"v%d" % i, key=b"k%d" % i)
    producer.close()


def test_a_log_worker_and_a_kafka_consumer_share_one_group(wire: Wire,
                                                           worker: LogWorker) -> None:
    write(wire, 0, 40)
    wait_for(lambda: worker.assignment == {0, 1, 2, 3} and len(worker.values) == 40)

    kafka_values: list[bytes] = []
    consumer = KafkaConsumer(bootstrap_servers=[wire.bootstrap], group_id="mixed",
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             heartbeat_interval_ms=300)
    # (kafka-python's leader rejoins at once if it joined before it knew the topic's
    # partitions: it would here too, but then records read before could come twice)
    assert consumer.partitions_for_topic("orders") == {0, 1, 2, 3}
    consumer.subscribe(["orders"])

    def poll() -> None:
        # (not shorter: kafka-python 3.0.12 can stall for good when a poll times out
        # while its SyncGroup is answered)
        for records in consumer.poll(timeout_ms=1000).values():
            kafka_values.extend(r.value for r in records)
        consumer.commit()

    try:
        wait_for(lambda: len(consumer.assignment()) == 2 and len(worker.assignment) == 2,
                 step=poll)
        kafka_share = {tp.partition for tp in consumer.assignment()}
        log_share = set(worker.assignment)
        write(wire, 40, 40)
        wait_for(lambda: len(worker.values) + len(kafka_values) == 80, step=poll)
        admin = KafkaAdminClient(bootstrap_servers=wire.bootstrap)
        try:
            described = admin.describe_groups(["mixed"])["mixed"]
        finally:
            admin.close()
    finally:
        consumer.close()
    # the kafka member left: the worker takes every partition back
    wait_for(lambda: worker.assignment == {0, 1, 2, 3})

    assert kafka_share | log_share == {0, 1, 2, 3} and not kafka_share & log_share
    assert kafka_values, "the kafka consumer read none of the new records"
    # each record once, by one member (the kafka consumer resumed at the worker's
    # commits in the log's group store)
    assert sorted(worker.values + kafka_values) == sorted(b"v%d" % i for i in range(80))
    assert sorted(m["client_id"] for m in described["members"]) == \
        sorted([consumer.config["client_id"], "streamkit log://"])
    assert described["group_state"] == "Stable"


def test_a_log_worker_joining_and_leaving_rebalances_the_kafka_consumer(wire: Wire
                                                                         ) -> None:
    wire.log.create_topic("orders", 4)
    consumer = KafkaConsumer(bootstrap_servers=[wire.bootstrap], group_id="mixed",
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             heartbeat_interval_ms=200)
    assert consumer.partitions_for_topic("orders") == {0, 1, 2, 3}
    consumer.subscribe(["orders"])

    def poll() -> None:
        consumer.poll(timeout_ms=1000)     # (see above: not shorter)

    try:
        wait_for(lambda: len(consumer.assignment()) == 4, step=poll)
        worker = LogWorker(wire)           # its join is a new generation in the log
        try:
            wait_for(lambda: len(consumer.assignment()) == 2 and
                     len(worker.assignment) == 2, step=poll)
            shares = ({tp.partition for tp in consumer.assignment()},
                      set(worker.assignment))
        finally:
            worker.close()                 # its leaving is another
        wait_for(lambda: len(consumer.assignment()) == 4, step=poll)
    finally:
        consumer.close()

    assert shares[0] | shares[1] == {0, 1, 2, 3} and not shares[0] & shares[1]
