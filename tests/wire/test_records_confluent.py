"""Records through ``streamkit broker`` with confluent-kafka (librdkafka 2.x): what its
Producer sends (uncompressed, gzip, snappy, lz4 or zstd) is in the log as sent, and what streamkit wrote
to the log its Consumer reads with ``assign()``, from the start or from a time."""
from __future__ import annotations

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer  # noqa: E402
from confluent_kafka import TopicPartition as KafkaPartition  # noqa: E402

import streamkit  # noqa: E402
from streamkit.types import TopicPartition  # noqa: E402
from tests.wire.conftest import Wire  # noqa: E402

BASE_TS = 1_700_000_000_000


def sent_records(count: int) -> list[tuple[bytes, bytes, list[tuple[str, bytes]], int]]:
    return [(b"k%d" % i, b"value-%d" % i * (i % 3 + 1),
             [("trace", b"t%d" % i), ("n", str(i).encode())], BASE_TS + i * 1000)
            for i in range(count)]


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_a_producer_writes_records_a_log_consumer_reads(wire: Wire, compression: str
                                                        ) -> None:
    wire.log.create_topic("rides", 2)
    records = sent_records(50)
    producer = Producer({"bootstrap.servers": wire.bootstrap,
                         "compression.type": compression, "linger.ms": 5})
    reports: list[tuple[int, int]] = []
    for key, value, headers, ts in records:
        producer.produce("rides", value=value, key=key, headers=headers, timestamp=ts,
                         partition=1, on_delivery=lambda err, msg: reports.append(
                             (msg.partition(), msg.offset()) if err is None else err))
    assert producer.flush(10) == 0

    assert sorted(reports) == [(1, i) for i in range(50)]
    consumer = streamkit.Consumer(broker="log://", datadir=wire.datadir,
                                  auto_offset_reset="earliest", enable_auto_commit=False)
    consumer.assign([TopicPartition("rides", 1)])
    got = []
    while len(got) < 50:
        batch = consumer.poll(timeout_ms=2000)
        assert batch, f"only {len(got)} records read"
        got += [m for ms in batch.values() for m in ms]
    consumer.close()
    assert [(m.key, m.value, [(h, v) for h, v in m.headers], m.timestamp, m.offset)
            for m in got] == [(k, v, h, ts, i) for i, (k, v, h, ts) in enumerate(records)]


def test_a_consumer_reads_what_a_log_producer_wrote(wire: Wire) -> None:
    producer = streamkit.Producer(broker="log://", datadir=wire.datadir)
    wire.log.create_topic("orders", 1)
    for i in range(30):
        producer.send("orders", value=b"v%d" % i, key=b"k%d" % i,
                      headers=[("h", b"x%d" % i)], timestamp_ms=BASE_TS + i)
    producer.close()

    consumer = Consumer({"bootstrap.servers": wire.bootstrap, "group.id": "unused",
                         "enable.auto.commit": False})
    try:
        consumer.assign([KafkaPartition("orders", 0, OFFSET_BEGINNING)])
        got = []
        while len(got) < 30:
            message = consumer.poll(10)
            assert message is not None and message.error() is None, message
            got.append(message)
        # from a time: ListOffsets by timestamp
        (at,) = consumer.offsets_for_times([KafkaPartition("orders", 0, BASE_TS + 12)],
                                           timeout=10)
        low, high = consumer.get_watermark_offsets(KafkaPartition("orders", 0), timeout=10)
    finally:
        consumer.close()
    assert [(m.key(), m.value(), m.headers(), m.timestamp()[1], m.offset()) for m in got] \
        == [(b"k%d" % i, b"v%d" % i, [("h", b"x%d" % i)], BASE_TS + i, i) for i in range(30)]
    assert (at.offset, low, high) == (12, 0, 30)
