"""The transactional APIs with a raw client, where clients do not go: Kafka's errors for
an empty transactional id, a timeout past the maximum, a bump by a fenced producer, an
unknown partition, a control batch from a client; and what a read_committed Fetch
answers while a transaction is open and after it is aborted (decisions 960-962)."""
from __future__ import annotations

import dataclasses
import datetime
import socket
import struct
from collections.abc import Iterator
from typing import Any

import crc32c
import pytest

from streamkit.types import OutgoingRecord, TopicPartition
from tests.wire.conftest import (Wire, decode_response, fetch_body, frame_of, kio_body,
                                 kio_module, list_offsets_body, produce_body,
                                 read_batches, read_frame, record_batch)

PRODUCE, FETCH, LIST_OFFSETS, INIT_PRODUCER_ID = 0, 1, 2, 22
ADD_PARTITIONS_TO_TXN, END_TXN = 24, 26
INVALID_REQUEST, INVALID_TRANSACTION_TIMEOUT, PRODUCER_FENCED = 42, 50, 90
UNKNOWN_TOPIC_OR_PARTITION, OPERATION_NOT_ATTEMPTED, INVALID_RECORD = 3, 55, 87
INVALID_PRODUCER_EPOCH = 47
TRANSACTIONAL, CONTROL = 0x10, 0x20


class Client:
    """One connection; ``call`` sends a request and returns its decoded response."""

    def __init__(self, wire: Wire) -> None:
        self.sock = socket.create_connection(("127.0.0.1", wire.port), timeout=5)
        self.correlation_id = 0

    def call(self, api_key: int, version: int, body: Any) -> Any:
        self.correlation_id += 1
        self.sock.sendall(frame_of(api_key, version, body, self.correlation_id))
        data = read_frame(self.sock)
        assert data is not None, f"api {api_key} v{version}: the connection was closed"
        got, response = decode_response(data, api_key, version)
        assert got == self.correlation_id
        return response

    def init(self, transactional_id: str, timeout_ms: int = 60_000,
             current: tuple[int, int] = (-1, -1), version: int = 4) -> Any:
        cls, _module = kio_module(INIT_PRODUCER_ID, version)
        return self.call(INIT_PRODUCER_ID, version, kio_body(
            cls, transactional_id=transactional_id,
            transaction_timeout=datetime.timedelta(milliseconds=timeout_ms),
            producer_id=current[0], producer_epoch=current[1]))

    def produce(self, topic: str, batch: bytes, transactional_id: str | None) -> Any:
        body = produce_body(9, topic, 0, batch)
        body = dataclasses.replace(body, transactional_id=transactional_id)
        (part,) = self.call(PRODUCE, 9, body).responses[0].partition_responses
        return part

    def fetch(self, topic: str, offset: int, isolation_level: int) -> Any:
        body = fetch_body(12, topic, 0, offset)
        body = dataclasses.replace(body, isolation_level=isolation_level)
        (part,) = self.call(FETCH, 12, body).responses[0].partitions
        return part

    def latest(self, topic: str, isolation_level: int) -> int:
        """ListOffsets' latest offset of partition 0 for a client of that level."""
        body = list_offsets_body(6, topic, 0, -1)
        body = dataclasses.replace(body, isolation_level=isolation_level)
        (part,) = self.call(LIST_OFFSETS, 6, body).topics[0].partitions
        return int(part.offset)

    def end(self, transactional_id: str, producer: tuple[int, int], commit: bool) -> int:
        cls, _module = kio_module(END_TXN, 3)
        return self.call(END_TXN, 3, kio_body(
            cls, transactional_id=transactional_id, producer_id=producer[0],
            producer_epoch=producer[1], committed=commit)).error_code

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def client(wire: Wire) -> Iterator[Client]:
    made = Client(wire)
    yield made
    made.close()


def with_attributes(batch: bytes, attributes: int) -> bytes:
    """``batch`` (one v2 batch) with these attribute bits added, its CRC redone."""
    (old,) = struct.unpack_from(">h", batch, 21)
    after_crc = struct.pack(">h", old | attributes) + batch[23:]
    return batch[:17] + struct.pack(">I", crc32c.crc32c(after_crc)) + after_crc


def txn_batch(values: list[bytes], producer: tuple[int, int], sequence: int) -> bytes:
    return with_attributes(record_batch([(None, v, [], 1_700_000_000_000) for v in values],
                                        producer_id=producer[0], epoch=producer[1],
                                        sequence=sequence), TRANSACTIONAL)


def test_init_producer_id_refuses_what_kafka_refuses(client: Client) -> None:
    assert client.init("").error_code == INVALID_REQUEST
    assert client.init("tx", timeout_ms=900_001).error_code == INVALID_TRANSACTION_TIMEOUT
    first = client.init("tx")
    assert first.error_code == 0
    second = client.init("tx")                           # a restart: a new epoch
    assert (second.producer_id, second.producer_epoch) == \
        (first.producer_id, first.producer_epoch + 1)
    # a bump (KIP-360) by the fenced holder is refused; by the current one, granted
    stale = client.init("tx", current=(first.producer_id, first.producer_epoch))
    assert (stale.error_code, stale.producer_id) == (PRODUCER_FENCED, -1)
    old_version = client.init("tx", current=(first.producer_id, first.producer_epoch),
                              version=3)
    assert old_version.error_code == INVALID_PRODUCER_EPOCH
    bumped = client.init("tx", current=(second.producer_id, second.producer_epoch))
    assert (bumped.error_code, bumped.producer_epoch) == (0, second.producer_epoch + 1)


def test_an_unknown_partition_fails_add_partitions_to_txn(wire: Wire,
                                                          client: Client) -> None:
    wire.log.create_topic("orders", 1)
    init = client.init("tx")
    cls, module = kio_module(ADD_PARTITIONS_TO_TXN, 3)
    response = client.call(ADD_PARTITIONS_TO_TXN, 3, kio_body(
        cls, v3_and_below_transactional_id="tx", v3_and_below_producer_id=init.producer_id,
        v3_and_below_producer_epoch=init.producer_epoch,
        v3_and_below_topics=(module.AddPartitionsToTxnTopic(name="orders",
                                                            partitions=(0, 7)),)))
    (topic,) = response.results_by_topic_v3_and_below
    assert [(r.partition_index, r.partition_error_code)
            for r in topic.results_by_partition] == \
        [(0, OPERATION_NOT_ATTEMPTED), (7, UNKNOWN_TOPIC_OR_PARTITION)]


def test_a_client_may_not_write_markers(wire: Wire, client: Client) -> None:
    wire.log.create_topic("orders", 1)
    init = client.init("tx")
    producer = (init.producer_id, init.producer_epoch)
    marker = with_attributes(record_batch([(b"\0\0\0\1", b"", [], 1)], producer_id=
                                          producer[0], epoch=producer[1], sequence=0),
                             TRANSACTIONAL | CONTROL)
    assert client.produce("orders", marker, "tx").error_code == INVALID_RECORD
    plain = txn_batch([b"v"], producer, 0)
    assert client.produce("orders", plain, None).error_code != 0   # no transactional id
    assert wire.log.offsets(TopicPartition("orders", 0)) == (0, 0)


def test_read_committed_fetch_stops_at_the_open_transaction(wire: Wire,
                                                            client: Client) -> None:
    wire.log.create_topic("orders", 1)
    wire.log.produce("orders", [OutgoingRecord(None, b"before", None, None, 0)])
    init = client.init("tx")
    producer = (init.producer_id, init.producer_epoch)
    # a batch of a partition the client did not add first: the server adds it
    part = client.produce("orders", txn_batch([b"open-0", b"open-1"], producer, 0), "tx")
    assert (part.error_code, part.base_offset) == (0, 1)
    again = client.produce("orders", txn_batch([b"open-0", b"open-1"], producer, 0), "tx")
    assert (again.error_code, again.base_offset) == (0, 1)    # sent again: not twice
    wire.log.produce("orders", [OutgoingRecord(None, b"after", None, None, 0)])

    committed = client.fetch("orders", 0, isolation_level=1)
    assert (committed.high_watermark, committed.last_stable_offset) == (4, 1)
    assert [v for _o, _k, v, _t in read_batches(committed.records)] == [b"before"]
    assert [client.latest("orders", isolation_level=i) for i in (0, 1)] == [4, 1]
    uncommitted = client.fetch("orders", 0, isolation_level=0)
    assert uncommitted.last_stable_offset == 4          # (unused by such clients)
    assert [v for _o, _k, v, _t in read_batches(uncommitted.records)] == \
        [b"before", b"open-0", b"open-1", b"after"]

    assert client.end("tx", producer, commit=False) == 0
    # the abort's marker is at 4: read_committed gets "after" (3), then a control
    # batch over the marker, and so moves on to the end
    committed = client.fetch("orders", 1, isolation_level=1)
    assert (committed.high_watermark, committed.last_stable_offset) == (5, 5)
    assert [(o, v) for o, _k, v, _t in read_batches(committed.records)] == \
        [(3, b"after"), (4, struct.pack(">hi", 0, 0))]
    assert batch_headers(committed.records) == [(3, 3, 0), (4, 4, TRANSACTIONAL | CONTROL)]

    # once a newer producer took the id, the older epoch cannot write any more
    assert client.init("tx").error_code == 0
    later = client.produce("orders", txn_batch([b"late"], producer, 2), "tx")
    assert later.error_code == INVALID_PRODUCER_EPOCH
    assert wire.log.offsets(TopicPartition("orders", 0)) == (0, 5)


def batch_headers(data: bytes) -> list[tuple[int, int, int]]:
    """(base offset, last offset, attributes) of each v2 batch of ``data``."""
    out = []
    pos = 0
    while pos < len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        attributes, last_delta = struct.unpack_from(">hi", data, pos + 21)
        out.append((base, base + last_delta, attributes))
        pos += 12 + length
    return out
