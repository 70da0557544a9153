"""The record sequences of streamkit.types that a broker reads or returns."""
from __future__ import annotations

import pytest

from streamkit.types import AppendedRecords, OutgoingRecord, PartitionRecords, RecordMetadata


def test_partition_records_read_as_outgoing_records():
    records = PartitionRecords([b"a", b"b", None], [b"1", None, b"3"], 7)
    expected = [OutgoingRecord(b"a", b"1", None, None, 7),
                OutgoingRecord(b"b", None, None, None, 7),
                OutgoingRecord(None, b"3", None, None, 7)]
    assert len(records) == 3
    assert list(records) == expected
    assert [records[i] for i in range(3)] == expected
    assert records[-1] == expected[-1] and records[1:] == expected[1:]
    with pytest.raises(ValueError, match="2 keys but 1 values"):
        PartitionRecords([b"a", b"b"], [b"1"], 0)


def test_appended_records_are_the_metadata_of_consecutive_offsets():
    metadata = AppendedRecords("t", 2, 40, [100, 100, 101])
    expected = [RecordMetadata("t", 2, 40, 100), RecordMetadata("t", 2, 41, 100),
                RecordMetadata("t", 2, 42, 101)]
    assert len(metadata) == 3
    assert list(metadata) == expected
    assert metadata[-1] == expected[-1] and metadata[-3] == expected[0]
    assert metadata[1:] == expected[1:] and metadata[::-1] == expected[::-1]
    for index in (3, -4):
        with pytest.raises(IndexError):
            metadata[index]
