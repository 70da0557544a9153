"""One bit flipped anywhere in a segment file, active or closed (a header field, the
CRC, a body; the first batch, the last): no acknowledged record is ever returned
changed or twice, every one is returned or its damage reported with its offset, and
the next append neither reuses an offset nor destroys what was readable.

The random trials are ``bitflip_trial`` of tests/faults/trials.py, one per seed;
``tools/fault_run.py --kind bitflip`` runs hundreds. The tests after them are the
smallest reproductions of what the trials found (each failed before the log was fixed).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from streamkit.errors import CorruptRecord
from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition

from .logfiles import COUNT_AT, FIRST_AT, LAST_AT, LENGTH_AT, MAGIC_AT, batch_at, flip
from .trials import bitflip_trial

TP = TopicPartition("t", 0)

SEEDS = range(60)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_flipped_bit_never_loses_changes_or_repeats_an_acknowledged_record(
        tmp_path: Path, seed: int) -> None:
    result = bitflip_trial(tmp_path / "log", seed)
    assert result.ok, result.report()


# -- reproductions -----------------------------------------------------------------

def _fill(root: Path, records: int, segment_bytes: int = 1 << 30) -> None:
    """``records`` acknowledged records (values ``r<offset>`` padded to 50 bytes) in
    batches of 10, in one partition whose segments roll at ``segment_bytes``."""
    broker = connect(f"log://{root}")
    broker.create_topic("t", partitions=1, config={"segment.bytes": str(segment_bytes)})
    for start in range(0, records, 10):
        broker.produce("t", [OutgoingRecord(None, b"r%d" % i + b"." * 50, None, None, 0)
                             for i in range(start, start + 10)], acks="all")
    broker.close()


# (byte of the header, bit mask): each makes the header of the batch of offsets 30-39
# fail the checks of a header chain
HEADER_DAMAGE = {"magic": (MAGIC_AT, 0x01), "body length": (LENGTH_AT, 0x01),
                 "first offset": (FIRST_AT + 6, 0x01), "last offset": (LAST_AT + 6, 0x01),
                 "record count": (COUNT_AT, 0x40)}


@pytest.mark.parametrize("field", list(HEADER_DAMAGE))
def test_a_damaged_header_in_a_closed_segment_keeps_the_records_before_it(
        tmp_path: Path, field: str) -> None:
    # found by bitflip seeds 4, 23, 27, 28, 29, 34, 45: e.g. seed 27 read from offsets
    # 0-100 raised "t[0] at offset 101", so offsets 0-100 were never returned
    root = tmp_path / "log"
    _fill(root, 300, segment_bytes=4096)             # ~6 batches per segment
    batch = batch_at(root, "t", 30)
    assert batch.path.name == "00000000000000000000.log"       # a closed segment
    at, mask = HEADER_DAMAGE[field]
    flip(batch.path, batch.pos + at, mask)
    broker = connect(f"log://{root}")
    try:
        assert [m.offset for m in broker.fetch(TP, 0, max_records=1000)] == \
            list(range(30))
        with pytest.raises(CorruptRecord) as info:
            broker.fetch(TP, 30)
        assert info.value.offset == 30
    finally:
        broker.close()


def test_a_damaged_header_in_the_active_segment_keeps_the_records_before_it(
        tmp_path: Path) -> None:
    root = tmp_path / "log"
    _fill(root, 100)                                  # one segment: the active one
    batch = batch_at(root, "t", 30)
    flip(batch.path, batch.pos + MAGIC_AT, 0x01)
    broker = connect(f"log://{root}")
    try:
        # (this raised "t[0] at offset 30"; a second identical fetch succeeded)
        assert [m.offset for m in broker.fetch(TP, 0, max_records=1000)] == \
            list(range(30))
    finally:
        broker.close()


def test_an_append_refused_at_a_damaged_last_offset_names_an_offset_of_the_partition(
        tmp_path: Path) -> None:
    # found by bitflip trials (e.g. seed 277 of tools/fault_run.py): the refusal
    # named t[0] at offset 1152921504606847160
    root = tmp_path / "log"
    _fill(root, 100)
    batch = batch_at(root, "t", 99)                   # the last batch: offsets 90-99
    flip(batch.path, batch.pos + LAST_AT + 7, 0x10)   # last offset += 2**60
    broker = connect(f"log://{root}")
    try:
        with pytest.raises(CorruptRecord) as info:
            broker.produce("t", [OutgoingRecord(None, b"x", None, None, 0)], acks="all")
        assert info.value.offset == 90
    finally:
        broker.close()
