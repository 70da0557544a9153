"""Kafka's default partitioner, bit for bit (how brokers place keyed records is in the
broker contract, tests/transport/test_broker_contract.py)."""
from __future__ import annotations

from streamkit.partitioner import murmur2


def test_murmur2_matches_kafka_vectors():
    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"abc") == 479470107
