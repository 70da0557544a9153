"""What a Produce's acks promise on the embedded log: acks=-1 (all) is answered once
the records are fsynced (the log's "synced" mark covers them), as a log:// producer's
acks="all"; acks=1 once written. Produce requests sent back to back are answered in
order, their records fsynced together before the first answer."""
from __future__ import annotations

import struct

from streamkit.types import TopicPartition
from tests.wire.conftest import (Wire, decode_response, fetch_body, frame_of,
                                 produce_body, read_frame, record_batch)
from tests.wire.test_protocol import call, connection
from tests.wire.test_records_protocol import PRODUCE, records

FETCH = 1


def synced(wire: Wire, topic: str, partition: int) -> tuple[int, int] | None:
    """(segment base, byte) the log recorded as fsynced; None if nothing was."""
    paths = list(wire.datadir.rglob(f"{topic}/{partition}/synced"))
    if not paths or not paths[0].read_bytes():
        return None
    base, end = struct.unpack("<qq", paths[0].read_bytes())
    return base, end


def segment_size(wire: Wire, topic: str, partition: int) -> int:
    (path,) = wire.datadir.rglob(f"{topic}/{partition}/{0:020d}.log")
    return path.stat().st_size


def test_acks_all_is_answered_after_the_fsync_and_acks_1_after_the_write(wire: Wire
                                                                          ) -> None:
    wire.log.create_topic("orders", 2)
    with connection(wire) as sock:
        answer = call(sock, PRODUCE, 9, produce_body(9, "orders", 0,
                                                     record_batch(records(5)), acks=-1))
        assert answer.responses[0].partition_responses[0].error_code == 0
        assert synced(wire, "orders", 0) == (0, segment_size(wire, "orders", 0))

        answer = call(sock, PRODUCE, 9, produce_body(9, "orders", 1,
                                                     record_batch(records(5)), acks=1))
        assert answer.responses[0].partition_responses[0].error_code == 0
    assert segment_size(wire, "orders", 1) > 0
    assert synced(wire, "orders", 1) is None


def test_requests_sent_back_to_back_are_answered_in_order_and_all_fsynced(wire: Wire
                                                                          ) -> None:
    wire.log.create_topic("orders", 3)
    frames = [frame_of(PRODUCE, 9, produce_body(9, "orders", i % 3,
                                                record_batch(records(4, start=4 * i)),
                                                acks=-1), correlation_id=100 + i)
              for i in range(6)]
    frames.append(frame_of(FETCH, 12, fetch_body(12, "orders", 0, 0), correlation_id=200))
    with connection(wire) as sock:
        sock.sendall(b"".join(frames))            # one send: the server sees them together
        answers = []
        for _ in frames:
            data = read_frame(sock)
            assert data is not None
            answers.append(data)

    ids = [decode_response(data, PRODUCE, 9)[0] for data in answers[:6]]
    assert ids == [100 + i for i in range(6)]
    bases = [decode_response(data, PRODUCE, 9)[1].responses[0].partition_responses[0]
             .base_offset for data in answers[:6]]
    assert bases == [0, 0, 0, 4, 4, 4]
    fetch_id, fetched = decode_response(answers[6], FETCH, 12)
    assert fetch_id == 200
    assert fetched.responses[0].partitions[0].high_watermark == 8
    for partition in range(3):
        assert synced(wire, "orders", partition) == \
            (0, segment_size(wire, "orders", partition))
    assert [m.value for m in wire.log.fetch(TopicPartition("orders", 1), 0)] == \
        [b"v%d" % i for i in (4, 5, 6, 7, 16, 17, 18, 19)]
