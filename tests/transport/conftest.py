"""The brokers of the transport tests: a fresh, empty one per test of each kind.

The broker contract (test_broker_contract.py, test_group_contract.py) runs every test
on ``log://``, ``memory://`` and ``kafka://``, the last once per Kafka-protocol broker
(``kafka-tansu``, ``kafka-streamkit``: ``--kafka`` in tests/conftest.py picks them), a
broker started for the test, marked ``kafka``; tansu's are skipped in one line where it
is not installed. A module that tests one driver names the kinds it runs on in
``BROKERS``.
"""
from __future__ import annotations

import itertools
import os

import pytest

from streamkit.transport import connect
from tests.conftest import KafkaBrokers, kafka_brokers

KINDS = ("log", "memory", "kafka")
_names = itertools.count()


def _parametrized_by_the_test(metafunc: pytest.Metafunc, name: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if name in ([n.strip() for n in names.split(",")] if isinstance(names, str)
                    else names):
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "url" in metafunc.fixturenames and not _parametrized_by_the_test(metafunc, "url"):
        params = []
        for kind in getattr(metafunc.module, "BROKERS", KINDS):
            if kind != "kafka":
                params.append(kind)
                continue
            params.extend(pytest.param(f"kafka-{which}", marks=pytest.mark.kafka)
                          for which in kafka_brokers(metafunc.config))
        metafunc.parametrize("url", params, indirect=True)


@pytest.fixture
def url(request: pytest.FixtureRequest, tmp_path,
        kafka_brokers_of_session: KafkaBrokers) -> str:
    """The URL of an empty broker of the kind the test is parametrized with."""
    kind = request.param
    if kind == "log":
        return f"log://{tmp_path / 'log'}"
    if kind == "memory":
        return f"memory://contract-{os.getpid()}-{next(_names)}"
    kafka = kafka_brokers_of_session.start(kind.removeprefix("kafka-"))
    request.addfinalizer(kafka.stop)
    return kafka.url


@pytest.fixture
def broker(url: str):
    """A connection to that broker, closed after the test."""
    b = connect(url, default_partitions=4)
    yield b
    b.close()
