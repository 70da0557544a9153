"""Fixtures of the Avro tests: a registry on a fresh in-memory broker per test."""
from __future__ import annotations

import itertools
import os

import pytest

from streamkit.avro import SchemaRegistry, codec
from streamkit.transport import connect

_names = itertools.count()


@pytest.fixture
def broker():
    """A memory:// broker of its own (memory://NAME is shared within the process)."""
    b = connect(f"memory://avro-test-{os.getpid()}-{next(_names)}")
    yield b
    b.close()


@pytest.fixture
def registry(broker) -> SchemaRegistry:
    return SchemaRegistry(broker)


@pytest.fixture
def default_registry(registry):
    """Make ``registry`` the default of AvroCodecs made without one (Record
    serializer="avro" uses the process-wide codec)."""
    previous = codec._default
    codec.use_registry(registry)
    yield registry
    codec._default = previous
