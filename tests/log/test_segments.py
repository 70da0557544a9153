"""Segment files: rolling, torn tails, corrupt batches (log:// only: these are files)."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import msgpack
import pytest

from streamkit.errors import CorruptRecord
from streamkit.log.segment import HEADER_SIZE, MAGIC, decode_rows, encode_batch
from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition

TP = TopicPartition("t", 0)


def _root(url: str) -> Path:
    return Path(url[len("log://"):])


def _segments(url: str) -> list[Path]:
    return sorted((_root(url) / "t" / "0").glob("*.log"))


def _produce_batches(broker, batches: int, per_batch: int = 10) -> None:
    for b in range(batches):
        broker.produce("t", [OutgoingRecord(b"k", b"b%d-%d" % (b, i))
                             for i in range(per_batch)])


def _values(broker, offset: int = 0) -> list[bytes]:
    return [m.value for m in broker.fetch(TP, offset, max_records=100_000)]


def test_segments_roll_at_segment_bytes_and_reads_cross_them(log_url):
    broker = connect(log_url)
    broker.create_topic("t", partitions=1, config={"segment.bytes": 1000})
    _produce_batches(broker, 20)
    names = [p.name for p in _segments(log_url)]
    assert len(names) > 3
    assert all(len(n) == len("00000000000000000000.log") for n in names)
    assert names[0] == "00000000000000000000.log"
    # each segment is named after the first offset it holds
    reader = connect(log_url)
    messages = reader.fetch(TP, 0, max_records=1000)
    assert [m.offset for m in messages] == list(range(200))
    bases = [int(n[:20]) for n in names]
    assert all(b % 10 == 0 for b in bases)
    assert [m.offset for m in reader.fetch(TP, bases[2] + 3, max_records=5)] == \
        list(range(bases[2] + 3, bases[2] + 8))


def test_torn_tail_truncated_on_reopen(log_url, caplog):
    broker = connect(log_url)
    broker.create_topic("t", partitions=1)
    _produce_batches(broker, 3)
    broker.close()
    seg = _segments(log_url)[-1]
    good_size = seg.stat().st_size
    data = seg.read_bytes()
    # half of a copy of the last batch: what a write cut short by a crash leaves
    last_batch = data[data.rindex(MAGIC):]
    with open(seg, "ab") as f:
        f.write(last_batch[:len(last_batch) // 2])
    assert seg.stat().st_size > good_size
    caplog.set_level(logging.WARNING, logger="streamkit.log")
    reopened = connect(log_url)
    assert _values(reopened) == [b"b%d-%d" % (b, i) for b in range(3) for i in range(10)]
    meta = reopened.produce("t", [OutgoingRecord(None, b"after")])[0]
    assert meta.offset == 30
    assert seg.stat().st_size > good_size
    assert any("a write that never completed" in r.getMessage() for r in caplog.records)
    assert _values(connect(log_url))[-2:] == [b"b2-9", b"after"]


@pytest.mark.parametrize("garbage", [b"\x00" * 100, os.urandom(7), MAGIC + b"\xff" * 20,
                                     os.urandom(5000)])
def test_garbage_tail_truncated(log_url, garbage):
    broker = connect(log_url)
    broker.create_topic("t", partitions=1)
    _produce_batches(broker, 2)
    broker.close()
    with open(_segments(log_url)[-1], "ab") as f:
        f.write(garbage)
    reader = connect(log_url)
    assert len(_values(reader)) == 20           # a reader stops at the garbage
    writer = connect(log_url)
    assert writer.produce("t", [OutgoingRecord(None, b"x")])[0].offset == 20
    assert _values(reader, 20) == [b"x"]        # and then reads on past the repair


def test_damaged_last_batch_is_reported_not_truncated(log_url):
    broker = connect(log_url)
    broker.create_topic("t", partitions=1)
    _produce_batches(broker, 3)
    broker.close()
    seg = _segments(log_url)[-1]
    size = seg.stat().st_size
    data = bytearray(seg.read_bytes())
    data[-3] ^= 0xFF                             # flip a byte inside the last batch
    seg.write_bytes(bytes(data))
    writer = connect(log_url)
    # the batch was acknowledged: it is damage, not a torn write, and stays in place
    assert writer.produce("t", [OutgoingRecord(None, b"x")])[0].offset == 30
    assert seg.stat().st_size > size
    assert len(_values(writer)) == 20            # the records before the damage
    with pytest.raises(CorruptRecord) as info:
        writer.fetch(TP, 20)
    assert info.value.offset == 20
    assert _values(writer, 30) == [b"x"]


def test_corrupt_batch_in_the_middle_names_topic_partition_offset(log_url):
    broker = connect(log_url)
    broker.create_topic("t", partitions=1)
    _produce_batches(broker, 3)
    broker.close()
    seg = _segments(log_url)[-1]
    data = bytearray(seg.read_bytes())
    second_batch = data.index(MAGIC, HEADER_SIZE)
    data[second_batch + HEADER_SIZE + 5] ^= 0xFF   # inside the body of batch 2 (offsets 10-19)
    seg.write_bytes(bytes(data))
    reader = connect(log_url)
    # the records before the damage come first, then the error
    assert [m.offset for m in reader.fetch(TP, 0, max_records=100)] == list(range(10))
    with pytest.raises(CorruptRecord) as info:
        reader.fetch(TP, 10, max_records=100)
    err = info.value
    assert (err.topic, err.partition, err.offset) == ("t", 0, 10)
    assert "t[0]" in str(err) and "offset 10" in str(err)
    assert "streamkit log repair t --partition 0" in str(err)
    with pytest.raises(CorruptRecord):
        reader.fetch(TP, 15)
    # the records after it are still readable, and appends still work
    assert [m.offset for m in reader.fetch(TP, 20)] == list(range(20, 30))
    writer = connect(log_url)
    assert writer.produce("t", [OutgoingRecord(None, b"x")])[0].offset == 30


def test_reader_follows_rolls_by_another_writer(log_url):
    writer = connect(log_url)
    writer.create_topic("t", partitions=1, config={"segment.bytes": 200})
    reader = connect(log_url)
    seen = []
    for round_ in range(10):
        writer.produce("t", [OutgoingRecord(None, b"r%d-%d" % (round_, i)) for i in range(5)])
        seen += reader.fetch(TP, len(seen), max_records=1000, timeout=1)
    assert [m.offset for m in seen] == list(range(50))
    assert len(_segments(log_url)) > 3


def test_acks_all_fsyncs_are_shared_between_producers(log_url):
    a = connect(log_url)
    b = connect(log_url)
    a.create_topic("t", partitions=1)
    log_a = a._partition(TP)
    log_b = b._partition(TP)
    _, _, mark_a = log_a.append([(None, b"from a", [], None)])
    _, _, mark_b = log_b.append([(None, b"from b", [], None)])
    assert mark_b[1] > mark_a[1]
    log_b.fsync(mark_b)          # b's fsync covers a's bytes too
    with log_a.store.sync_lock() as synced:
        assert synced >= mark_a[:2]
    log_a.fsync(mark_a)          # so a has nothing left to fsync
    with log_a.store.sync_lock() as synced:
        assert synced == mark_b[:2]


def test_reader_ignores_a_batch_until_its_writer_publishes_it(log_url):
    from streamkit.log.segment import encode_batch
    from streamkit.log.storage import RecoveryPoint, boot_id
    broker = connect(log_url)
    broker.create_topic("t", partitions=1)
    _produce_batches(broker, 1)
    reader = connect(log_url)
    assert len(_values(reader)) == 10
    batch = encode_batch(10, 10, [(0, 1, None, b"slow", None)], 1, False)
    seg = _segments(log_url)[-1]
    with open(seg, "ab") as f:
        f.write(batch[:30])                  # a writer in the middle of its write
        f.flush()
        assert _values(reader, 10) == []
        f.write(batch[30:])
        f.flush()
        assert _values(reader, 10) == []     # whole, but not yet published
    # what the writer does once its write(2) returned, under the partition lock
    broker._partition(TP).store.write_recovery(
        RecoveryPoint(0, seg.stat().st_size, 11, boot_id()))
    assert _values(reader, 10) == [b"slow"]


def test_corrupt_batch_in_an_older_segment(log_url):
    broker = connect(log_url)
    broker.create_topic("t", partitions=1, config={"segment.bytes": 300})
    _produce_batches(broker, 6)
    broker.close()
    first = _segments(log_url)[0]
    data = bytearray(first.read_bytes())
    data[HEADER_SIZE + 3] ^= 0xFF
    first.write_bytes(bytes(data))
    reader = connect(log_url)
    with pytest.raises(CorruptRecord) as info:
        reader.fetch(TP, 0)
    assert info.value.offset == 0
    assert len(reader.fetch(TP, 10, max_records=1000)) == 50
    # a writer does not "repair" older segments: the damage stays visible
    assert connect(log_url).produce("t", [OutgoingRecord(None, b"x")])[0].offset == 60
    with pytest.raises(CorruptRecord):
        connect(log_url).fetch(TP, 0)


def test_batch_bodies_are_the_bytes_msgpack_writes():
    # (encoded with ormsgpack, decoded with msgpack: the file format stays msgpack's)
    rows = [(0, 1_700_000_000_000, b"k", b"v", None),
            (1, 0, None, None, [("h", b"1"), ("empty", b"")]),
            (2, 2**63 - 1, b"", b"x" * 70_000, [("n", None)]),
            (300, 1, b"\x00\xff", b"y" * 300, [])]
    data = encode_batch(10, 310, rows, 2**63 - 1, False)
    body = data[HEADER_SIZE:]
    assert body == msgpack.Packer(use_bin_type=True).pack(rows)
    assert decode_rows(data, 0)[1] == [list(r[:4]) + [None if r[4] is None else
                                                      [list(h) for h in r[4]]]
                                       for r in rows]
