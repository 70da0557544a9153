"""A table's changes on their way out: encoded once for the changelog and the store,
and written to the changelog in chunks.

A commit writes every key changed since the previous one. With many new keys that is
as many records as events, so the encoding skips the JSON encoder for ints (counts,
and int keys): a list of nothing but ints is encoded in one call, as one JSON array
split at its commas (the same bytes as the JSON codec's, in C). The records are written
``CHUNK`` at a time: the records of a big commit are never all in memory
at once (their encoded bytes are, until the store has them).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import msgspec

from streamkit.serializers import Serde
from streamkit.serializers.codecs import JSONCodec
from streamkit.types import OutgoingRecord, PartitionRecords, RecordMetadata

#: how many changelog records one produce call writes
CHUNK = 10_000

#: the types of a list of plain ints
_JUST_INT = {int}
_json_array = msgspec.json.Encoder().encode

Produce = Callable[[str, Sequence[OutgoingRecord], Any], Sequence[RecordMetadata]]


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


def all_ints(items: list[Any]) -> bool:
    """Whether every item of ``items`` (at least one) is an int, not a bool."""
    return set(map(type, items)) == _JUST_INT


def json_ints(items: list[int]) -> list[bytes]:
    """The JSON of each int of ``items`` (``all_ints``), in one call into C: a JSON
    array of them split at its commas."""
    return _json_array(items)[1:-1].split(b",")


def encode_keys(keys: list[Any], dump: Callable[[Any], bytes], plain_ints: bool
                ) -> list[bytes]:
    """The changelog bytes of ``keys``; ints in one call when ``plain_ints`` (the key
    codec is plain JSON) and every key is one."""
    if plain_ints and all_ints(keys):
        return json_ints(keys)
    return list(map(dump, keys))


def encode_values(values: list[Any], dump: Callable[[Any], bytes | None],
                  plain_ints: bool, deleted: Any) -> list[bytes | None]:
    """The changelog bytes of ``values``: None (a tombstone) for ``deleted``; ints in
    one call when ``plain_ints`` and every value is one (a count)."""
    if plain_ints and all_ints(values):
        return cast("list[bytes | None]", json_ints(values))
    return [None if value is deleted else dump(value) for value in values]


def write(produce: Produce, topic: str, partition: int, keys: list[bytes],
          values: list[bytes | None]) -> int:
    """Write ``keys`` with their ``values`` (None: a tombstone) to partition
    ``partition`` of changelog ``topic``, ``CHUNK`` records a call; returns the offset
    after the last."""
    if len(keys) != len(values):
        raise ValueError(f"changelog {topic}[{partition}]: {len(keys)} keys but "
                         f"{len(values)} values")
    offset = 0
    for start in range(0, len(keys), CHUNK):
        end = start + CHUNK
        # as columns: the embedded log writes them without a tuple per record
        records = PartitionRecords(keys[start:end], values[start:end], partition)
        offset = produce(topic, records, None)[-1].offset + 1
    return offset
