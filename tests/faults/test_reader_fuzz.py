"""Arbitrary and damaged bytes in segments, read through the log's own code (a
``LogBroker`` over ``MemoryStorage``: the Partition and Segment code of log://, with
the bytes in ``MemoryHandle`` buffers): only CorruptRecord comes out (or nothing),
never another exception, never a hang, never a record that was not written at that
offset, never an offset twice or out of order. An append after it either succeeds or
is refused with CorruptRecord, and changes no byte before the recovery point.

The reproductions at the end are what these tests found (each failed before the log
was fixed). One class of input is out of the promise: a batch body rewritten *under a
recomputed CRC* into rows that decode well (a repeated or fractional offset, a row of
five ints). The CRC vouches for a body's rows, as in Kafka (decision 108), so such a
forgery can be read back; examples holding one are only held to "CorruptRecord or
nothing, no other exception, no hang". ``FUZZ_EXAMPLES=5000`` runs a longer search.
"""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from streamkit.errors import CorruptRecord, OffsetOutOfRange
from streamkit.log.broker import LogBroker
from streamkit.log.segment import HEADER, MAGIC, MemoryHandle, encode_batch
from streamkit.log.memory import MemoryPartitionStore, MemoryStorage
from streamkit.log.storage import RecoveryPoint, boot_id
from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition

from .logfiles import batch_at, batch_spans, batches, rewrite_body, segments
from .trials import time_limit

TP = TopicPartition("t", 0)
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 150)), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: offset -> every (key, value) a batch in the bytes holds there (as a reader decodes it)
Written = dict[int, list[tuple[object, object]]]

# -- what a correct reader may return --------------------------------------------------

def _packb(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _well_formed(first: int, last: int, count: int, body: bytes) -> list[tuple]:
    """The rows a batch with this header and body holds if a writer could have written
    it: a msgpack list of ``count`` rows ``[delta, timestamp, key, value, headers]``
    with int deltas increasing strictly within ``0 .. last - first``; else []."""
    try:
        rows = msgpack.unpackb(body, use_list=False)
    except Exception:                     # noqa: BLE001 - any failure: not well formed
        return []
    if type(rows) is not tuple or len(rows) != count or count < 0:
        return []
    previous = -1
    for row in rows:
        if type(row) is not tuple or len(row) != 5 or not isinstance(row[0], int) \
                or not previous < row[0] <= last - first:
            return []
        previous = row[0]
    return list(rows)


def _add_rows(written: Written, first: int, rows: list[tuple]) -> None:
    for delta, _ts, key, value, _headers in rows:
        written.setdefault(first + delta, []).append((key, value))


def _batch(first: int, last: int, count: int, body: bytes, crc_ok: bool = True,
           crc: int = 0, length: int | None = None, max_timestamp: int = 1000,
           attributes: int = 0) -> bytes:
    """A batch header (with the right CRC unless ``crc_ok`` is false) and ``body``."""
    blen = len(body) if length is None else length
    tail = HEADER.pack(MAGIC, 0, blen, first, last, count, max_timestamp, attributes)[8:]
    if crc_ok:
        crc = zlib.crc32(body, zlib.crc32(tail))
    return MAGIC + struct.pack("<I", crc) + tail + body


# -- checking -------------------------------------------------------------------------

def _broker(contents: dict[int, bytes], point: RecoveryPoint | None = None,
            storage: MemoryStorage | None = None) -> tuple[LogBroker, MemoryPartitionStore]:
    """A broker whose partition t[0] holds ``contents`` (segment base -> bytes) and
    ``point``; or, given ``storage``, a fresh broker over it."""
    if storage is None:
        storage = MemoryStorage()
        storage.create_topic("t", 1, {})
        store = storage.partition_store("t", 0)
        store.segments = {base: MemoryHandle(data) for base, data in contents.items()}
        store.recovery = point
    return LogBroker("memory://fuzz", storage), storage.partition_store("t", 0)


def _check(broker: LogBroker, store: MemoryPartitionStore, written: Written,
           starts: list[int], malformed: bool) -> None:
    """``_check_reads`` then ``_check_append``, within a time limit (a hang fails).
    Bytes holding a body forged under a recomputed CRC (``malformed``) may give back
    its rows (decision 108): such an example only has to raise nothing but
    CorruptRecord, so a wrong record in it is not a failure."""
    with time_limit(20, "reading damaged bytes"):
        try:
            _check_reads(broker, written, starts)
        except AssertionError:
            if malformed:
                reject()
            raise
        _check_append(broker, store)


def _check_reads(broker: LogBroker, written: Written, starts: list[int]) -> None:
    """Read forward from each of ``starts`` (on past each CorruptRecord, at most 400
    reads): every record returned is one written at its offset, in increasing
    offsets."""
    for start in starts:
        offset, last = start, -1
        for _ in range(400):
            try:
                messages = broker.fetch(TP, offset, max_records=50)
            except CorruptRecord as exc:
                assert (exc.topic, exc.partition) == ("t", 0)
                assert "streamkit log repair" in str(exc)
                offset += 1
                continue
            except OffsetOutOfRange:
                break
            if not messages:
                break
            for m in messages:
                assert type(m.offset) is int and m.offset >= offset and m.offset > last, \
                    f"offset {m.offset!r} after {last} (reading from {offset})"
                assert (m.key, m.value) in written.get(m.offset, ()), \
                    f"offset {m.offset}: {(m.key, m.value)!r} was never written there"
                last = m.offset
            offset = last + 1


def _check_append(broker: LogBroker, store: MemoryPartitionStore) -> None:
    """One append: it succeeds or is refused with CorruptRecord; either way no byte
    before the recovery point changes (only bytes after it, which no completed write
    vouches for, may be cut)."""
    point = store.read_recovery()
    before = {base: bytes(h.buf) for base, h in store.segments.items()}
    try:
        broker.produce("t", [OutgoingRecord(None, b"appended", None, None, 0)])
    except CorruptRecord:
        pass
    for base, data in before.items():
        assert base in store.segments, f"the append deleted segment {base}"
        kept = data[:point.end] if point is not None and base == point.base else data
        assert bytes(store.segments[base].buf).startswith(kept), \
            f"the append changed segment {base} before byte {len(kept)}"


# -- arbitrary bytes -----------------------------------------------------------------

_leaf = (st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1)
         | st.floats(allow_nan=False) | st.binary(max_size=8) | st.text(max_size=4))
msgpack_values = st.recursive(
    _leaf, lambda inner: st.lists(inner, max_size=6) |
    st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=20)
#: a row as a writer writes it, or junk where a row should be
rows_like = st.lists(
    st.tuples(st.integers(-2, 12), st.integers(0, 2**40),
              st.none() | st.binary(max_size=6), st.none() | st.binary(max_size=12),
              st.none()).map(list)
    | msgpack_values, max_size=6)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """A batch body: rows (well formed or not), any msgpack value, or raw bytes;
    sometimes cut short or with bytes after it."""
    body = draw(st.one_of(rows_like.map(_packb), msgpack_values.map(_packb),
                          st.binary(max_size=24)))
    edit = draw(st.sampled_from(("whole", "whole", "cut", "trailing")))
    if edit == "cut" and body:
        body = body[:draw(st.integers(0, len(body) - 1))]
    elif edit == "trailing":
        body += draw(st.binary(min_size=1, max_size=3))
    return body


@st.composite
def chunks(draw: st.DrawFn) -> tuple[bytes, Written, bool]:
    """Segment bytes made of random pieces: garbage, batches a writer writes, and
    headers with the magic and any fields around any body (with the right CRC or not);
    what a correct reader may return from them; and whether a body no writer writes
    passes its CRC somewhere in them."""
    data = b""
    written: Written = {}
    malformed = False
    for kind in draw(st.lists(st.sampled_from(("garbage", "batch", "header")),
                              max_size=8)):
        if kind == "garbage":
            data += draw(st.binary(max_size=48))
            continue
        first = draw(st.integers(0, 40) | st.integers(-2**63 + 8, 2**63 - 64))
        if kind == "batch":
            values = draw(st.lists(st.none() | st.binary(max_size=12), max_size=5))
            rows = [[i, 1000 + i, None, v, None] for i, v in enumerate(values)]
            last = first + max(len(rows) - 1, 0) + draw(st.integers(0, 2))
            data += encode_batch(first, last, rows, 1000, False)
            _add_rows(written, first, [tuple(r) for r in rows])
            continue
        body = draw(bodies())
        last = first + draw(st.integers(-1, 8))
        count = draw(st.integers(-1, 8))
        length = draw(st.sampled_from((None, None, None, 0, len(body) + 1, 2**31 - 1)))
        crc_ok = draw(st.booleans())
        data += _batch(first, last, count, body, crc_ok, draw(st.integers(0, 2**32 - 1)),
                       length)
        if crc_ok and length in (None, len(body)):
            rows = _well_formed(first, last, count, body)
            _add_rows(written, first, rows)
            malformed |= not rows and body != _packb([])
    return data, written, malformed


@FUZZ
@given(chunks(), st.sampled_from(("active", "closed")), st.integers(0, 20),
       st.data())
def test_arbitrary_segment_bytes_give_only_written_records_or_corrupt_record(
        piece: tuple[bytes, Written, bool], where: str, base: int,
        data: st.DataObject) -> None:
    content, written, malformed = piece
    boot = data.draw(st.sampled_from((boot_id(), bytes(16))), label="boot")
    if where == "active":
        end = data.draw(st.sampled_from((len(content), len(content) + 5))
                        | st.integers(0, len(content)), label="recovery point end")
        next_offset = data.draw(st.integers(0, 60), label="next offset")
        point = data.draw(st.sampled_from((RecoveryPoint(base, end, next_offset, boot),
                                           None)), label="recovery point")
        contents = {base: content}
    else:
        active = base + data.draw(st.integers(1, 80), label="active base")
        point = RecoveryPoint(active, 0, active, boot)
        contents = {base: content, active: b""}
    starts = [0, base] + data.draw(st.lists(st.integers(0, 60), max_size=3),
                                   label="starts")
    broker, store = _broker(contents, point)
    _check(broker, store, written, starts, malformed)


# -- written batches, then damaged ---------------------------------------------------

#: how to write a partition: segment.bytes, then (records, value padding) per batch
plans = st.tuples(st.sampled_from((600, 2000, 1 << 20)),
                  st.lists(st.tuples(st.integers(1, 12), st.integers(0, 60)),
                           min_size=1, max_size=12))


def _write(plan: tuple[int, list[tuple[int, int]]]) -> tuple[MemoryStorage, Written]:
    """A partition written by the log itself as ``plan`` says (batches and segments of
    random sizes), and what it was written with: offset -> [(key, value)]."""
    segment_bytes, batch_plan = plan
    storage = MemoryStorage()
    broker = LogBroker("memory://fuzz", storage)
    broker.create_topic("t", 1, config={"segment.bytes": str(segment_bytes)})
    written: Written = {}
    for count, pad in batch_plan:
        records = [(b"k%d" % (len(written) % 3), b"v%d" % (len(written) + i) + b"." * pad)
                   for i in range(count)]
        metadata = broker.produce("t", [OutgoingRecord(k, v, None, None, 0)
                                        for k, v in records], acks=1)
        for meta, record in zip(metadata, records, strict=True):
            written[meta.offset] = [record]
    return storage, written


@st.composite
def malformed_bodies(draw: st.DrawFn, span: int, count: int) -> bytes:
    """A body for a batch of ``count`` records over ``span`` offsets that a writer
    would never write: rows with deltas repeated, decreasing or out of range, a row
    that is not a list of five, a wrong number of rows, or any other bytes."""
    def row(delta: object) -> list:
        return [delta, 1000, None, b"not written", None]

    deltas = draw(st.lists(st.integers(-1, span), min_size=count, max_size=count))
    junk = st.sampled_from((b"\x00abcd", "abcde", [], {}, [0], [0, 1, 2, 3],
                            [0.0, 1000, None, b"x", None], [None, 1000, None, b"x", None],
                            ["0", 1000, None, b"x", None], 7, None))
    rows = [row(d) for d in deltas]
    if rows and draw(st.booleans()):
        rows[draw(st.integers(0, len(rows) - 1))] = draw(junk)
    rows = draw(st.sampled_from((rows, rows[1:], rows + [row(span - 1)])))
    return draw(st.sampled_from((_packb(rows), _packb(rows), _packb(rows)[:-1]))
                | bodies())


def _mutate(draw: st.DrawFn, data: bytes, written: Written) -> tuple[bytes, bool]:
    """``data`` damaged one way (``written`` updated where a batch is rewritten), and
    whether the damage is a body no writer writes under a CRC that matches it."""
    kind = draw(st.sampled_from(("flip", "cut", "truncate", "insert", "duplicate",
                                 "malformed")), label="mutation")
    size = len(data)
    position = st.integers(0, max(size - 1, 0))
    spans = batch_spans(data)
    if kind == "flip":
        out = bytearray(data)
        for at in draw(st.lists(position, min_size=1, max_size=3), label="flipped bytes"):
            out[at] ^= 1 << draw(st.integers(0, 7))
        return bytes(out), False
    if kind in ("cut", "truncate"):
        start = draw(position, label="cut from")
        stop = size if kind == "truncate" else draw(st.integers(start, size), label="to")
        return data[:start] + data[stop:], False
    if kind == "insert" or not spans:
        at = draw(st.integers(0, size), label="insert at")
        return data[:at] + draw(st.binary(min_size=1, max_size=48)) + data[at:], False
    pos, length, first, last = draw(st.sampled_from(spans), label="batch")
    if kind == "duplicate":
        at = draw(st.sampled_from([p for p, *_ in spans] + [size]), label="copy to")
        return data[:at] + data[pos:pos + length] + data[at:], False
    _magic, _crc, _blen, _first, _last, count, max_timestamp, attributes = \
        HEADER.unpack_from(data, pos)
    body = draw(malformed_bodies(last - first + 1, count), label="body")
    for offset in range(first, last + 1):
        written.pop(offset, None)
    rows = _well_formed(first, last, count, body)
    _add_rows(written, first, rows)
    # the header keeps its timestamp: a forged old one would let retention delete the
    # segment, rightly
    batch = _batch(first, last, count, body, max_timestamp=max_timestamp,
                   attributes=attributes)
    return data[:pos] + batch + data[pos + length:], not rows


@FUZZ
@given(plans, st.data())
def test_damaged_segments_give_only_written_records_or_corrupt_record(
        plan: tuple[int, list[tuple[int, int]]], data: st.DataObject) -> None:
    storage, written = _write(plan)
    store = storage.partition_store("t", 0)
    base = data.draw(st.sampled_from(sorted(store.segments)), label="segment")
    handle = store.segments[base]
    damaged, malformed = data.draw(st.composite(
        lambda draw: _mutate(draw, bytes(handle.buf), written))())
    handle.buf[:] = damaged
    point = store.read_recovery()
    if point is not None and point.base == base and data.draw(st.booleans(),
                                                              label="move the point"):
        # as if a writer had published the damaged bytes as whole
        store.recovery = point._replace(end=len(damaged))
    starts = [0] + data.draw(st.lists(st.integers(0, max(written, default=0) + 1),
                                      max_size=3), label="starts")
    broker, store = _broker({}, storage=storage)
    _check(broker, store, written, starts, malformed)


# -- reproductions -----------------------------------------------------------------

def _row(delta: object) -> list:
    return [delta, 1000, None, b"forged", None]


#: bodies for a batch of 5 records at offsets 0-4 that pass the CRC (recomputed) but
#: do not decode into five rows: the rows in them are never handed out
FORGED_BODIES = {
    "empty row": [[], _row(1), _row(2), _row(3), _row(4)],
    "map row": [{}, _row(1), _row(2), _row(3), _row(4)],
    "row of two": [[0, 1000], _row(1), _row(2), _row(3), _row(4)],
    "four rows": [_row(0), _row(1), _row(2), _row(3)],
    "offset text": [_row("0"), _row(1), _row(2), _row(3), _row(4)],
    "not a list": {"rows": 5},
}


@pytest.mark.parametrize("forged", list(FORGED_BODIES))
def test_a_body_that_passes_its_crc_but_no_writer_wrote_is_corrupt(
        tmp_path: Path, forged: str) -> None:
    root = tmp_path / "log"
    broker = connect(f"log://{root}")
    broker.create_topic("t", 1, config={"segment.bytes": "1"})     # a segment per append
    broker.produce("t", [OutgoingRecord(None, b"r%d" % i, None, None, 0)
                         for i in range(5)], acks="all")
    broker.produce("t", [OutgoingRecord(None, b"r%d" % i, None, None, 0)
                         for i in range(5, 10)], acks="all")
    broker.close()
    rewrite_body(batch_at(root, "t", 0), _packb(FORGED_BODIES[forged]))
    broker = connect(f"log://{root}")
    try:
        with pytest.raises(CorruptRecord) as info:
            broker.fetch(TP, 0, max_records=100)
        assert info.value.offset == 0
        assert [m.value for m in broker.fetch(TP, 5, max_records=100)] == \
            [b"r%d" % i for i in range(5, 10)]
    finally:
        broker.close()


def _closed_segments(root: Path) -> list[Path]:
    """60 acknowledged records (``r<offset>``) in batches of 10, in segments of about
    three batches: two closed segments, then the active one."""
    broker = connect(f"log://{root}")
    broker.create_topic("t", 1, config={"segment.bytes": "2000"})
    for start in range(0, 60, 10):
        broker.produce("t", [OutgoingRecord(None, b"r%d" % i + b"." * 50, None, None, 0)
                             for i in range(start, start + 10)], acks="all")
    broker.close()
    return segments(root, "t")


def test_a_closed_segment_that_lost_its_last_batch_reports_it(tmp_path: Path) -> None:
    root = tmp_path / "log"
    first = _closed_segments(root)[0]
    lost = batches(first)[-1]                      # offsets 20-29 of segment 0-29
    with open(first, "r+b") as f:
        f.truncate(lost.pos)
    broker = connect(f"log://{root}")
    try:
        # (this read 0-19, then 30-59, as if 20-29 had never been written)
        assert [m.offset for m in broker.fetch(TP, 0, max_records=1000)] == \
            list(range(lost.first))
        with pytest.raises(CorruptRecord) as info:
            broker.fetch(TP, lost.first)
        assert info.value.offset == lost.first
    finally:
        broker.close()


def test_an_emptied_closed_segment_is_reported_not_deleted_by_retention(
        tmp_path: Path) -> None:
    # found by test_damaged_segments_...: a cut from byte 0 to the end of segment 0
    root = tmp_path / "log"
    first = _closed_segments(root)[0]
    with open(first, "r+b") as f:
        f.truncate(0)
    broker = connect(f"log://{root}")
    try:
        for _ in range(2):                         # rolls: retention runs
            broker.produce("t", [OutgoingRecord(None, b"x" * 1500, None, None, 0)],
                           acks="all")
        assert first.exists(), "retention deleted the damaged segment"
        with pytest.raises(CorruptRecord) as info:
            broker.fetch(TP, 0)
        assert info.value.offset == 0
    finally:
        broker.close()
