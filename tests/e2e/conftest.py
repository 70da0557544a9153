"""Helpers for end-to-end tests: real worker processes on an embedded log in tmp."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import streamkit
from streamkit.types import TopicPartition

APPS = Path(__file__).parent / "apps"


class WorkerProcess:
    """A ``python app.py worker`` subprocess."""

    def __init__(self, app_file: Path, datadir: Path, env: dict[str, str] | None = None):
        self.log_path = datadir / f"worker-{time.monotonic_ns()}.log"
        environment = dict(os.environ, STREAMKIT_DATADIR=str(datadir),
                           STREAMKIT_BROKER=f"log://{datadir}/log", PYTHONUNBUFFERED="1")
        environment.update(env or {})
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, str(app_file), "worker"],
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     env=environment, cwd=str(datadir))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 20.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


@pytest.fixture
def workers(tmp_path):
    started: list[WorkerProcess] = []

    def start(app: str = "counting.py", **env: str) -> WorkerProcess:
        worker = WorkerProcess(APPS / app, tmp_path, env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


def read_topic(datadir: Path, topic: str) -> list[streamkit.Message]:
    """Every record of a topic, all partitions, read without a consumer group."""
    admin = streamkit.Admin(broker=f"log://{datadir}/log")
    try:
        if topic not in admin.list_topics():
            return []
        info = admin.describe_topic(topic)
        broker = admin._broker
        out: list[streamkit.Message] = []
        for p in range(info.partitions):
            offset = info.start_offsets[p]
            while offset < info.end_offsets[p]:
                batch = broker.fetch(TopicPartition(topic, p), offset, 10_000)
                if not batch:
                    break
                out.extend(batch)
                offset = batch[-1].offset + 1
        return out
    finally:
        admin.close()


def processed_ids(datadir: Path) -> list[int]:
    return [json.loads(m.value)["id"] for m in read_topic(datadir, "processed")]


def wait_for(condition, timeout: float = 30.0, interval: float = 0.1, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


BAD_JSON = b'{"id": 1, "vendorId": 1'
WRONG_TYPE = b'{"id": "not a number", "vendorId": 1}'


def produce_rides(datadir: Path, ids: range, *, bad: dict[int, bytes] | None = None
                  ) -> dict[int, int]:
    """Send rides (vendor = id % 3 + 1); return the expected count per vendor."""
    producer = streamkit.Producer(broker=f"log://{datadir}/log", linger_ms=50,
                                  batch_size=500)
    admin = streamkit.Admin(broker=f"log://{datadir}/log")
    if "rides" not in admin.list_topics():
        admin.create_topic("rides", partitions=4)
    admin.close()
    expected: dict[int, int] = {}
    for i in ids:
        vendor = i % 3 + 1
        if bad and i in bad:
            producer.send("rides", value=bad[i], key=str(vendor).encode())
            continue
        expected[vendor] = expected.get(vendor, 0) + 1
        producer.send("rides", key=str(vendor).encode(), value=json.dumps(
            {"id": i, "vendorId": vendor, "total_amount": float(i % 60)}).encode())
    producer.flush()
    producer.close()
    return expected


def table_from_changelog(datadir: Path, app_id: str, table: str) -> dict:
    """A table's latest values, read from its changelog topic as any consumer could."""
    latest: dict = {}
    for m in read_topic(datadir, f"{app_id}-{table}-changelog"):
        if m.key[:1] == b"\x00":
            continue
        key = json.loads(m.key)
        if m.value is None:
            latest.pop(key, None)
        else:
            latest[key] = json.loads(m.value)
    return latest
