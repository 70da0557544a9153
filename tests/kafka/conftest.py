"""Fixtures of the kafka:// tests; the tansu broker itself is started by tests/conftest.py."""
from __future__ import annotations

import pytest


@pytest.fixture
def broker(tansu: str):
    """A KafkaBroker on the session's tansu, closed after the test."""
    from streamkit.transport.kafka import KafkaBroker
    b = KafkaBroker(tansu, default_partitions=4)
    yield b
    b.close()
