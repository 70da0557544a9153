"""Two worker processes of one app on kafka:// (tansu, streamkit broker) share the
topic's partitions through Kafka's group protocol; one is SIGKILLed, the other takes
its partitions over, restores their table partitions from the changelog on Kafka, and
the counts are complete."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from streamkit.transport.kafka import KafkaBroker
from streamkit.types import OutgoingRecord, TopicPartition

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

APP = Path(__file__).parent / "apps" / "kcount.py"
REPO = Path(__file__).resolve().parents[2]
N = 3000


def read_topic(broker: KafkaBroker, topic: str) -> list:
    if broker.partition_count(topic) is None:
        return []
    info = broker.describe_topic(topic)
    out = []
    for p in range(info.partitions):
        offset = info.start_offsets[p]
        while offset < info.end_offsets[p]:
            batch = broker.fetch(TopicPartition(topic, p), offset, 10_000, timeout=5)
            if not batch:
                break
            out.extend(batch)
            offset = batch[-1].offset + 1
    return out


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Worker:
    def __init__(self, url: str, app_id: str, workdir: Path) -> None:
        self.log_path = workdir / f"worker-{time.monotonic_ns()}.log"
        env = dict(os.environ, STREAMKIT_BROKER=url, STREAMKIT_DATADIR=str(workdir),
                   KCOUNT_ID=app_id, PYTHONUNBUFFERED="1",
                   PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, str(APP), "worker"], stdout=log,
                                         stderr=subprocess.STDOUT, env=env, cwd=workdir)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def broker(tansu: str):
    """A KafkaBroker on the session's tansu, closed after the test."""
    b = KafkaBroker(tansu, default_partitions=4)
    yield b
    b.close()


def test_two_workers_split_partitions_and_the_survivor_of_a_sigkill_completes(
        broker, tmp_path):
    app_id = f"kc-{uuid.uuid4().hex[:8]}"
    rides = f"{app_id}-rides"
    broker.create_topic(rides, partitions=4)
    broker.produce(rides, [OutgoingRecord(str(i % 3 + 1).encode(), json.dumps(
        {"id": i, "vendorId": i % 3 + 1}).encode(), partition=i % 4) for i in range(N)])
    expected = {v: sum(1 for i in range(N) if i % 3 + 1 == v) for v in (1, 2, 3)}

    a = Worker(broker.url, app_id, tmp_path)
    b = Worker(broker.url, app_id, tmp_path)
    try:
        def pids():
            return {json.loads(m.value)["pid"]
                    for m in read_topic(broker, f"{app_id}-processed")}
        wait_for(lambda: {a.proc.pid, b.proc.pid} <= pids(), 60,
                 "both workers processing")
        b.proc.kill()
        b.proc.wait(10)
        wait_for(lambda: {json.loads(m.value)["id"] for m in
                          read_topic(broker, f"{app_id}-processed")} >= set(range(N)),
                 90, "the survivor processing every ride")
        a.proc.terminate()
        assert a.proc.wait(30) == 0, a.log()
    finally:
        a.close()
        b.close()

    counts: dict[int, int] = {}
    for m in read_topic(broker, f"{app_id}-vendor_rides-changelog"):
        if m.key[:1] == b"\x00":
            continue                     # the table's own bookkeeping records
        counts[json.loads(m.key)] = json.loads(m.value)
    # At least once: a SIGKILL may repeat a few events, never lose one.
    assert set(counts) == {1, 2, 3}, counts
    assert all(counts[v] >= expected[v] for v in expected), (counts, expected)
