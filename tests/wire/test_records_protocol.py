"""Produce, Fetch, ListOffsets and InitProducerId on the wire, with the raw client:
Kafka's errors for bad batches, unknown partitions and offsets out of range; byte
limits; long polling woken by an append; the idempotent producer's sequence numbers."""
from __future__ import annotations

import random
import threading
import time

import pytest

import streamkit
from streamkit.types import OutgoingRecord, TopicPartition
from tests.wire.conftest import (Wire, fetch_body, frame_of, init_producer_id_body,
                                 list_offsets_body, produce_body, read_batches, record_batch)
from tests.wire.test_protocol import call, connection

PRODUCE, FETCH, LIST_OFFSETS, INIT_PRODUCER_ID = 0, 1, 2, 22
TS = 1_700_000_000_000
CORRUPT_MESSAGE, UNKNOWN_TOPIC_OR_PARTITION, OFFSET_OUT_OF_RANGE = 2, 3, 1
OUT_OF_ORDER_SEQUENCE_NUMBER, UNSUPPORTED_COMPRESSION_TYPE = 45, 76


def produce(wire: Wire, topic: str, batch: bytes, partition: int = 0, version: int = 9
            ) -> tuple[int, int]:
    """(error code, base offset) of producing ``batch``."""
    with connection(wire) as sock:
        response = call(sock, PRODUCE, version, produce_body(version, topic, partition,
                                                             batch))
    (part,) = response.responses[0].partition_responses
    return part.error_code, part.base_offset


def records(count: int, start: int = 0) -> list[tuple[bytes, bytes, list[tuple[str, bytes]],
                                                   int]]:
    return [(b"k%d" % i, b"v%d" % i, [], TS + i) for i in range(start, start + count)]


def test_a_batch_with_a_bad_crc_is_refused_with_corrupt_message(wire: Wire) -> None:
    wire.log.create_topic("orders", 1)
    batch = bytearray(record_batch(records(3)))
    batch[-1] ^= 0xFF                           # a value's byte: the CRC no longer holds

    assert produce(wire, "orders", bytes(batch)) == (CORRUPT_MESSAGE, -1)
    assert wire.log.offsets(TopicPartition("orders", 0)) == (0, 0)


def test_an_unknown_codec_is_refused_and_gzip_is_read(wire: Wire) -> None:
    wire.log.create_topic("orders", 1)
    unknown = record_batch(records(2), codec=5)            # Kafka has codecs 0-4

    assert produce(wire, "orders", unknown)[0] == UNSUPPORTED_COMPRESSION_TYPE
    assert produce(wire, "orders", record_batch(records(4), gzip_records=True)) == (0, 0)
    assert [m.value for m in wire.log.fetch(TopicPartition("orders", 0), 0)] == \
        [b"v0", b"v1", b"v2", b"v3"]


def test_a_missing_topic_or_partition_is_reported_and_not_created(wire: Wire) -> None:
    wire.log.create_topic("orders", 2)

    assert produce(wire, "missing", record_batch(records(1)))[0] == \
        UNKNOWN_TOPIC_OR_PARTITION
    assert produce(wire, "orders", record_batch(records(1)), partition=2)[0] == \
        UNKNOWN_TOPIC_OR_PARTITION
    assert wire.log.partition_count("missing") is None


def test_acks_0_gets_no_response_and_the_records_are_written(wire: Wire) -> None:
    wire.log.create_topic("orders", 1)
    with connection(wire) as sock:
        sock.sendall(frame_of(PRODUCE, 9, produce_body(9, "orders", 0,
                                                        record_batch(records(2)), acks=0),
                              correlation_id=1))
        # the next response is the next request's: none came for acks=0
        response = call(sock, LIST_OFFSETS, 6, list_offsets_body(6, "orders", 0, -1),
                        correlation_id=2)
    assert response.topics[0].partitions[0].offset == 2


def fetch(wire: Wire, offset: int, version: int = 12, **limits: int) -> object:
    with connection(wire) as sock:
        response = call(sock, FETCH, version, fetch_body(version, "orders", 0, offset,
                                                         **limits))
    (part,) = response.responses[0].partitions
    return part


def test_fetch_answers_from_the_offset_with_watermarks_and_errors(wire: Wire) -> None:
    wire.log.create_topic("orders", 1)
    wire.log.produce("orders", [OutgoingRecord(b"k%d" % i, b"v%d" % i, None, TS + i, 0)
                                for i in range(10)])

    part = fetch(wire, 4)
    past = fetch(wire, 11)

    assert [(o, v, t) for o, _k, v, t in read_batches(part.records)] == \
        [(i, b"v%d" % i, TS + i) for i in range(4, 10)]
    assert (part.error_code, part.high_watermark, part.last_stable_offset,
            part.log_start_offset) == (0, 10, 10, 0)
    assert (past.error_code, past.high_watermark) == (OFFSET_OUT_OF_RANGE, 10)
    assert fetch(wire, 10).records == b""           # at the end: nothing, no error


def test_fetch_keeps_to_max_bytes_but_returns_at_least_one_record(wire: Wire) -> None:
    wire.log.create_topic("orders", 1)
    wire.log.produce("orders", [OutgoingRecord(None, bytes(1000), None, TS, 0)
                                for _ in range(20)])

    small = fetch(wire, 0, partition_max_bytes=3000)
    tiny = fetch(wire, 0, partition_max_bytes=10)

    assert 1 < len(read_batches(small.records)) < 20 and len(small.records) <= 3000
    assert [o for o, *_ in read_batches(tiny.records)] == [0]


def test_a_fetch_waits_for_an_append_and_returns_with_it(wire: Wire) -> None:
    wire.log.create_topic("orders", 1)
    # another writer of the same data directory, as a log:// app is
    producer = streamkit.Producer(broker="log://", datadir=wire.datadir)
    appender = threading.Timer(0.3, lambda: producer.send("orders", b"late").get(5))
    appender.start()
    started = time.monotonic()
    part = fetch(wire, 0, max_wait_ms=10_000)
    waited = time.monotonic() - started
    appender.join()
    producer.close()

    assert [v for _o, _k, v, _t in read_batches(part.records)] == [b"late"]
    assert 0.25 < waited < 5


def test_a_fetch_with_nothing_appended_returns_empty_after_max_wait(wire: Wire) -> None:
    wire.log.create_topic("orders", 1)
    started = time.monotonic()
    part = fetch(wire, 0, max_wait_ms=300)
    waited = time.monotonic() - started

    assert (part.error_code, part.records) == (0, b"")
    assert 0.25 < waited < 3


def test_list_offsets_earliest_latest_and_by_time(wire: Wire) -> None:
    wire.log.create_topic("orders", 1)
    wire.log.produce("orders", [OutgoingRecord(None, b"v", None, TS + i * 10, 0)
                                for i in range(5)])

    def offset_of(timestamp: int) -> tuple[int, int]:
        with connection(wire) as sock:
            response = call(sock, LIST_OFFSETS, 6, list_offsets_body(6, "orders", 0,
                                                                     timestamp))
        part = response.topics[0].partitions[0]
        return part.offset, part.timestamp

    assert offset_of(-2)[0] == 0
    assert offset_of(-1)[0] == 5
    assert offset_of(TS + 15) == (2, TS + 20)
    assert offset_of(TS + 999) == (-1, -1)


def test_an_idempotent_batch_sent_again_is_written_once(wire: Wire) -> None:
    wire.log.create_topic("orders", 1)
    with connection(wire) as sock:
        init = call(sock, INIT_PRODUCER_ID, 4, init_producer_id_body(4))
    pid = init.producer_id

    def batch(sequence: int, start: int) -> bytes:
        return record_batch(records(3, start), producer_id=pid, epoch=0, sequence=sequence)

    first = produce(wire, "orders", batch(0, 0))
    again = produce(wire, "orders", batch(0, 0))         # the response was "lost"
    second = produce(wire, "orders", batch(3, 3))
    gap = produce(wire, "orders", batch(10, 6))

    assert (first, again, second) == ((0, 0), (0, 0), (0, 3))
    assert gap[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert [m.value for m in wire.log.fetch(TopicPartition("orders", 0), 0)] == \
        [b"v%d" % i for i in range(6)]


@pytest.mark.parametrize("version", [3, 9])
def test_several_batches_in_one_produce_are_all_written(wire: Wire, version: int) -> None:
    wire.log.create_topic("orders", 1)
    two = record_batch(records(2)) + record_batch(records(3, 2))

    assert produce(wire, "orders", two, version=version) == (0, 0)
    assert len(wire.log.fetch(TopicPartition("orders", 0), 0)) == 5


def test_a_waiting_fetch_does_not_hold_up_other_connections(wire: Wire) -> None:
    wire.log.create_topic("orders", 1)
    waiting = threading.Thread(target=fetch, args=(wire, 0), kwargs={"max_wait_ms": 1000})
    waiting.start()
    time.sleep(0.1)
    started = time.monotonic()
    with connection(wire) as sock:                     # served while the fetch waits
        response = call(sock, LIST_OFFSETS, 6, list_offsets_body(6, "orders", 0, -1))
    served_in = time.monotonic() - started
    waiting.join()

    assert response.topics[0].partitions[0].error_code == 0
    assert served_in < 0.5


def test_a_record_without_a_timestamp_is_stamped_when_written(wire: Wire) -> None:
    wire.log.create_topic("orders", 1)
    before = int(time.time() * 1000)

    assert produce(wire, "orders", record_batch([(None, b"v", [], -1)])) == (0, 0)
    (message,) = wire.log.fetch(TopicPartition("orders", 0), 0)
    assert before <= message.timestamp <= int(time.time() * 1000)


def test_a_topic_name_the_log_refuses_is_an_unknown_topic(wire: Wire) -> None:
    with connection(wire) as sock:
        fetched = call(sock, FETCH, 12, fetch_body(12, "bad name!", 0, 0))
        listed = call(sock, LIST_OFFSETS, 6, list_offsets_body(6, "..", 0, -1))
    assert produce(wire, "bad name!", record_batch(records(1)))[0] == \
        UNKNOWN_TOPIC_OR_PARTITION
    assert fetched.responses[0].partitions[0].error_code == UNKNOWN_TOPIC_OR_PARTITION
    assert listed.topics[0].partitions[0].error_code == UNKNOWN_TOPIC_OR_PARTITION


def test_flipped_bytes_in_a_batch_are_answered_and_never_half_written(wire: Wire) -> None:
    wire.log.create_topic("orders", 1)
    good = record_batch(records(3), gzip_records=True)
    rng = random.Random(18)
    written = 0
    with connection(wire) as sock:
        for _ in range(200):
            batch = bytearray(good)
            at = rng.randrange(len(batch))
            batch[at] ^= 1 << rng.randrange(8)
            response = call(sock, PRODUCE, 9, produce_body(9, "orders", 0, bytes(batch)))
            (part,) = response.responses[0].partition_responses
            if at >= 16:           # magic, CRC and what it covers: refused
                assert part.error_code in (CORRUPT_MESSAGE, 43), at
            if part.error_code == 0:
                written += 3
    assert wire.log.offsets(TopicPartition("orders", 0)) == (0, written)
