"""Adding partitions to a topic of the embedded log (Kafka's create_partitions): the
records already written stay where they are, the new partitions are empty and
writable, other brokers on the same directory see the new count, and a config change
at the same time does not undo it."""
from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from streamkit.errors import InvalidConfig, UnknownTopic
from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition


def _values(broker, topic: str, partition: int) -> list[bytes | None]:
    return [m.value for m in broker.fetch(TopicPartition(topic, partition), 0)]



def run_together(*targets: Callable[[], None]) -> None:
    """Run ``targets`` in threads at once, until all have returned."""
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_added_partitions_are_empty_and_the_old_records_stay(broker) -> None:
    broker.create_topic("orders", 2, {"retention.ms": "1000000"})
    broker.produce("orders", [OutgoingRecord(None, b"a%d" % i, partition=0) for i in range(3)])
    broker.produce("orders", [OutgoingRecord(None, b"b", partition=1)])

    broker.create_partitions("orders", 5)

    assert broker.partition_count("orders") == 5
    info = broker.describe_topic("orders")
    assert (info.start_offsets, info.end_offsets) == ([0] * 5, [3, 1, 0, 0, 0])
    assert info.config["retention.ms"] == "1000000"        # the config is kept
    assert _values(broker, "orders", 0) == [b"a0", b"a1", b"a2"]
    assert _values(broker, "orders", 1) == [b"b"]
    written = broker.produce("orders", [OutgoingRecord(None, b"new", partition=4)])
    assert (written[0].partition, written[0].offset) == (4, 0)
    assert _values(broker, "orders", 4) == [b"new"]


@pytest.mark.parametrize(("count", "message"), [
    (3, "already has 3 partitions"),
    (2, "has 3 partitions, more than the 2 asked for: partitions cannot be removed"),
])
def test_a_count_that_is_not_more_is_refused_and_changes_nothing(broker, count: int,
                                                                 message: str) -> None:
    broker.create_topic("orders", 3)
    broker.produce("orders", [OutgoingRecord(None, b"x", partition=2)])
    with pytest.raises(InvalidConfig, match=message):
        broker.create_partitions("orders", count)
    assert broker.partition_count("orders") == 3
    assert _values(broker, "orders", 2) == [b"x"]


def test_a_missing_topic_is_unknown_and_not_created(broker) -> None:
    with pytest.raises(UnknownTopic, match="'missing' does not exist"):
        broker.create_partitions("missing", 3)
    assert broker.partition_count("missing") is None


def test_another_broker_on_the_directory_sees_the_new_partitions(log_url: str) -> None:
    one, two = connect(log_url), connect(log_url)
    try:
        one.create_topic("orders", 1)
        assert two.partition_count("orders") == 1           # cached by the second
        one.create_partitions("orders", 3)
        assert two.partition_count("orders") == 3
        two.produce("orders", [OutgoingRecord(None, b"v", partition=2)])
        assert _values(one, "orders", 2) == [b"v"]
    finally:
        one.close()
        two.close()


def test_an_interrupted_attempt_is_finished_by_the_next(log_url: str, tmp_path) -> None:
    broker = connect(log_url)
    try:
        broker.create_topic("orders", 1)
        # a crash after the new partition's directory was made, before topic.json was
        # replaced: the topic still has one partition
        (tmp_path / "log" / "orders" / "1").mkdir()
        assert broker.partition_count("orders") == 1
        broker.create_partitions("orders", 2)
        broker.produce("orders", [OutgoingRecord(None, b"v", partition=1)])
        assert _values(broker, "orders", 1) == [b"v"]
        assert broker.list_topics() == ["orders"]          # (topic.lock is no topic)
    finally:
        broker.close()


def test_config_changes_at_the_same_time_do_not_undo_added_partitions(log_url: str
                                                                      ) -> None:
    adder, alterer = connect(log_url), connect(log_url)
    adder.create_topic("orders", 1)
    errors: list[BaseException] = []

    def add() -> None:
        try:
            for count in range(2, 30):
                adder.create_partitions("orders", count)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    def alter() -> None:
        try:
            for i in range(30):
                alterer.alter_topic_config("orders", {"retention.ms": str(1000 + i)})
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    run_together(add, alter)
    try:
        assert errors == []
        for broker in (adder, alterer):
            assert broker.partition_count("orders") == 29
            assert broker.describe_topic("orders").config["retention.ms"] == "1029"
    finally:
        adder.close()
        alterer.close()


def test_alter_topic_config_removes_configs_named_in_delete(broker) -> None:
    broker.create_topic("orders", 1, {"retention.ms": "1000", "segment.bytes": "4096"})
    broker.alter_topic_config("orders", {"cleanup.policy": "compact"},
                              delete=["retention.ms"])
    assert broker.topic_config("orders") == {"segment.bytes": "4096",
                                             "cleanup.policy": "compact"}
    assert broker.describe_topic("orders").config["retention.ms"] == "604800000"


def test_a_topic_deleted_and_created_again_meanwhile_is_left_whole(log_url: str,
                                                                  tmp_path) -> None:
    adder, recreator = connect(log_url), connect(log_url)
    adder.create_topic("orders", 1, {"retention.ms": "0"})
    errors: list[BaseException] = []

    def add() -> None:
        try:
            for _ in range(60):
                try:
                    count = adder.partition_count("orders")
                    if count is not None:
                        adder.create_partitions("orders", count + 1)
                except (UnknownTopic, InvalidConfig):
                    pass                   # deleted, or grown by the other meanwhile
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    def recreate() -> None:
        try:
            for i in range(1, 21):
                recreator.delete_topic("orders")
                recreator.create_topic("orders", 1, {"retention.ms": str(i)})
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    run_together(add, recreate)
    try:
        assert errors == []
        # the last topic keeps its own config, and has every partition it counts
        assert recreator.topic_config("orders") == {"retention.ms": "20"}
        count = recreator.partition_count("orders")
        assert count is not None
        assert all((tmp_path / "log" / "orders" / str(p)).is_dir() for p in range(count))
        recreator.produce("orders", [OutgoingRecord(None, b"v", partition=count - 1)])
    finally:
        adder.close()
        recreator.close()
