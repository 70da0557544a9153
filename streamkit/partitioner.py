"""Kafka's default partitioner, bit for bit: ``toPositive(murmur2(key)) % partitions``.

Keys hash the same here as in the Java client and in librdkafka's ``murmur2_random``,
so a key lands on the same partition number on the embedded log and on Kafka.
"""
from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 of ``data``, as a signed int (as Java returns it)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    end = length - (length & 3)
    for i in range(0, end, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[end + 2] << 16
    if rest >= 2:
        h ^= data[end + 1] << 8
    if rest >= 1:
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - 0x100000000 if h & 0x80000000 else h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a non-null key."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class KeyPartitioner:
    """``partition_for_key`` with a bounded cache: stream keys repeat (vendors,
    locations), and hashing in Python costs about a microsecond per key."""

    __slots__ = ("_cache", "_limit")

    def __init__(self, limit: int = 65536) -> None:
        self._cache: dict[tuple[bytes, int], int] = {}
        self._limit = limit

    def __call__(self, key: bytes, partitions: int) -> int:
        cache_key = (key, partitions)
        partition = self._cache.get(cache_key)
        if partition is None:
            if len(self._cache) >= self._limit:
                self._cache.clear()
            partition = self._cache[cache_key] = partition_for_key(key, partitions)
        return partition
