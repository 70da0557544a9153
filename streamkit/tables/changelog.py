"""A table's changes on their way out: encoded once for the changelog and the store,
and written to the changelog in chunks.

A commit writes every key changed since the previous one. With many new keys that is
as many records as events, so the encoding skips the JSON encoder for ints (counts,
and int keys), and the records are built and produced ``CHUNK`` at a time: the records
of a big commit are never all in memory at once (their encoded bytes are, until the
store has them).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from streamkit.serializers import Serde
from streamkit.serializers.codecs import JSONCodec
from streamkit.types import OutgoingRecord, RecordMetadata

#: how many changelog records one produce call writes
CHUNK = 10_000
#: the headers of every changelog record (none; the log only reads them)
_NO_HEADERS: list[tuple[str, bytes]] = []

Produce = Callable[[str, Sequence[OutgoingRecord], Any], list[RecordMetadata]]


def plain_json(serde: Serde) -> bool:
    """Whether ``serde`` encodes an int as the built-in JSON codec does: its digits."""
    return type(serde.codec) is JSONCodec and serde.type_ in (None, int)


def encoder(serde: Serde) -> Callable[[Any], bytes | None]:
    """``serde.dumps``, with ints encoded inline when ``serde`` is plain JSON (the
    same bytes, without the encoder)."""
    dumps = serde.dumps
    if not plain_json(serde):
        return dumps

    def dumps_int_inline(value: Any) -> bytes | None:
        if type(value) is int:
            return b"%d" % value
        return dumps(value)
    return dumps_int_inline


def write(produce: Produce, topic: str, partition: int, keys: list[bytes],
          values: list[bytes | None]) -> int:
    """Write ``keys`` with their ``values`` (None: a tombstone) to partition
    ``partition`` of changelog ``topic``, ``CHUNK`` records a call; returns the offset
    after the last."""
    new, headers = tuple.__new__, _NO_HEADERS
    offset = 0
    for start in range(0, len(keys), CHUNK):
        end = start + CHUNK
        records = [new(OutgoingRecord, (k, v, headers, None, partition))
                   for k, v in zip(keys[start:end], values[start:end], strict=True)]
        offset = produce(topic, records, None)[-1].offset + 1
    return offset
