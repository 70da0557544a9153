"""A single-node Apache Kafka broker for the kafka:// tests (``--kafka=apache``).

Apache Kafka 4.4 in KRaft mode, one JVM that is broker and controller at once, on two
free 127.0.0.1 ports, with its log directory under the test session's temporary
directory. Its jars are fetched once by Maven (tests/kafka_server/pom.xml, run by
.ci/run) into ~/.cache/streamkit/kafka-server/kafka-4.4.0; where they or Java are
missing, ``missing()`` says so in one line and the tests on it are skipped (decision
941). The broker's own settings are shortened where tests wait on its background work:
the log cleaner, retention checks and the deletion of old segments run within a second,
and a group member's session may be as short as one second.
"""
from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

KAFKA_VERSION = "4.4.0"
JARS = Path.home() / ".cache" / "streamkit" / "kafka-server" / f"kafka-{KAFKA_VERSION}"
POM = Path(__file__).with_name("pom.xml")
FETCH = f"mvn -q -f {POM.relative_to(POM.parents[2])} dependency:copy-dependencies"
HEAP = "-Xmx512m"
#: how long the JVM may take to format the log directory and start serving
START_TIMEOUT = 90.0

#: broker settings beyond the ports and directories: one copy of everything, few
#: partitions for the internal topics (created at the first group or transaction), and
#: background tasks that run within a second instead of minutes. Topics keep their
#: records unless their own ``retention.ms`` says otherwise: with retention checked twice
#: a second, the stock 7 days would delete at once the records tests write with fixed
#: timestamps from 2023.
SETTINGS = {
    "log.retention.ms": "-1",
    "num.partitions": "1",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "4",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "1000",
    "log.initial.task.delay.ms": "0",
    "log.retention.check.interval.ms": "500",
    "log.segment.delete.delay.ms": "200",
    "log.cleaner.backoff.ms": "200",
    "log.cleaner.dedupe.buffer.size": "16777216",
    "log.cleaner.threads": "1",
}


def missing() -> str | None:
    """Why Apache Kafka cannot start here (no Java, no jars), or None."""
    if shutil.which("java") is None:
        return "Apache Kafka tests need java on PATH (not found)"
    if not (JARS / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
        return f"Apache Kafka {KAFKA_VERSION} jars not in {JARS} (run: {FETCH})"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cluster_id() -> str:
    # What kafka-storage random-uuid prints: a UUID in URL-safe base64, unpadded, and
    # (as Kafka's own Uuid.randomUuid) never one starting with "-", which the command
    # line would take for an option: one cluster id in 64 did, and the broker never
    # started
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class ApacheKafka:
    """One running Apache Kafka broker: ``url`` is ``kafka://127.0.0.1:PORT``;
    ``started_in`` is how long it took to format its directory and start (seconds)."""

    def __init__(self, workdir: Path) -> None:
        reason = missing()
        if reason is not None:
            raise RuntimeError(reason)
        self.workdir = workdir
        began = time.monotonic()
        for attempt in range(5):
            port, controller = _free_port(), _free_port()
            properties = self._write_properties(port, controller, attempt)
            self._java("kafka.tools.StorageTool", "format", "-t", _cluster_id(),
                       "-c", str(properties), "--ignore-formatted")
            proc = self._start(properties, workdir / f"kafka-{attempt}.log")
            if proc is not None:
                break
        else:
            raise RuntimeError("Apache Kafka could not find free ports in 5 tries")
        self.proc = proc
        self.pid = proc.pid
        self.port = port
        self.url = f"kafka://127.0.0.1:{port}"
        self.started_in = time.monotonic() - began

    def _write_properties(self, port: int, controller: int, attempt: int) -> Path:
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.workdir / f"data-{attempt}"),
            **SETTINGS,
        }
        path = self.workdir / f"server-{attempt}.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        return path

    def _command(self, main: str, *args: str) -> list[str]:
        return ["java", HEAP, "-XX:+UseSerialGC", "-Djava.awt.headless=true",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-cp", str(JARS / "*"), main, *args]

    def _java(self, main: str, *args: str) -> None:
        done = subprocess.run(self._command(main, *args), capture_output=True, text=True,
                              timeout=START_TIMEOUT)
        if done.returncode != 0:
            raise RuntimeError(f"{main} {' '.join(args)} failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout)[-2000:]}")

    def _start(self, properties: Path, log_path: Path) -> subprocess.Popen | None:
        """Start the broker; None if it exited (a port was taken meanwhile)."""
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(self._command("kafka.Kafka", str(properties)),
                                    stdout=log_file, stderr=subprocess.STDOUT,
                                    env={**os.environ, "KAFKA_HEAP_OPTS": HEAP})
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                if b"Address already in use" in log_path.read_bytes():
                    return None
                break
            if b"Kafka Server started" in log_path.read_bytes():
                return proc
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise RuntimeError(f"Apache Kafka did not start (log {log_path}): "
                           f"{log_path.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        """Kill the broker by its pid: its data lives in a temporary directory."""
        if self.proc.poll() is None:
            os.kill(self.pid, 9)
        self.proc.wait()
