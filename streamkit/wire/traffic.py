"""What ``streamkit broker``'s status line reports: records produced and fetched.

The counts are read from the record batches' headers (the record count of each batch,
at a fixed place), not from the records, so counting costs a few steps per batch.
"""
from __future__ import annotations

import struct
from typing import Any

__all__ = ["Traffic", "batch_records"]

PRODUCE = 0
FETCH = 1
#: a batch's length (after its first 12 bytes), and its record count at byte 57
_LENGTH = struct.Struct(">i")
_COUNT = struct.Struct(">i")
_HEADER_SIZE = 61


def batch_records(data: bytes | None) -> int:
    """The records in the v2 record batches ``data`` (a partial batch at the end, as a
    fetch may return, is not counted)."""
    if not data:
        return 0
    total = 0
    pos = 0
    while pos + _HEADER_SIZE <= len(data):
        (length,) = _LENGTH.unpack_from(data, pos + 8)
        if length <= 0 or pos + 12 + length > len(data):
            break
        total += max(_COUNT.unpack_from(data, pos + 57)[0], 0)
        pos += 12 + length
    return total


class Traffic:
    """Records produced and fetched over the protocol since the server started."""

    __slots__ = ("fetched", "produced")

    def __init__(self) -> None:
        self.produced = 0
        self.fetched = 0

    def note(self, api_key: int, request_body: Any, response: Any) -> None:
        """Count the records of one answered request: a Produce's batches that were
        written (all of them with ``acks=0``, which gets no response), a Fetch's
        batches returned."""
        if api_key == PRODUCE:
            self.produced += _produced(request_body, response)
        elif api_key == FETCH and response is not None:
            self.fetched += sum(batch_records(part.records)
                                for topic in response.responses
                                for part in topic.partitions)


def _produced(request_body: Any, response: Any) -> int:
    failed: set[tuple[str, int]] = set()
    if response is not None:
        failed = {(topic.name, part.index) for topic in response.responses
                  for part in topic.partition_responses if part.error_code != 0}
    return sum(batch_records(data.records) for topic in request_body.topic_data
               for data in topic.partition_data if (topic.name, data.index) not in failed)
