"""Faust itself (faust-streaming, through aiokafka) against the server: a worker of
tests/wire/faust_counter.py counts keyed records in a Table and sends each new count
on; kafka-python produces the records and reads the counts back. Faust creates its
topics (the table's changelog compacted), joins its group, commits, and every record
is counted once.

Faust runs in its own Python (decision 951): this interpreter if it has faust, else
$STREAMKIT_FAUST_PYTHON, else ~/.cache/streamkit/faust-venv (which .ci/run makes with
``pip install faust-streaming``); skipped where none has it."""
from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

kafka = pytest.importorskip("kafka", reason="kafka-python is not installed")

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402

from streamkit.types import TopicPartition as LogPartition  # noqa: E402
from tests.wire.conftest import Wire  # noqa: E402

FAUST_VENV = Path.home() / ".cache" / "streamkit" / "faust-venv"


def faust_python() -> str | None:
    """A Python that can import faust, or None."""
    if importlib.util.find_spec("faust") is not None:
        return sys.executable
    given = os.environ.get("STREAMKIT_FAUST_PYTHON")
    if given:
        return given
    venv_python = FAUST_VENV / "bin" / "python"
    if venv_python.exists() and list(FAUST_VENV.glob("lib/python*/site-packages/faust")):
        return str(venv_python)
    return None


FAUST_PYTHON = faust_python()
pytestmark = pytest.mark.skipif(
    FAUST_PYTHON is None,
    reason=f"faust-streaming is not installed here, in $STREAMKIT_FAUST_PYTHON or in "
           f"{FAUST_VENV} (python -m venv {FAUST_VENV} && "
           f"{FAUST_VENV}/bin/pip install faust-streaming)")

WORDS = ["apple", "banana", "cherry", "date", "elder", "fig", "grape"]
COUNT = 300


@pytest.fixture
def faust_worker(wire: Wire, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``faust -A faust_counter worker`` against ``wire`` (with the app's topics), its
    output in a file."""
    assert FAUST_PYTHON is not None
    wire.log.create_topic("words", 2)
    wire.log.create_topic("counts", 2)
    output = (tmp_path / "worker.log").open("wb")
    env = {**os.environ, "BROKER_PORT": str(wire.port),
           "PYTHONPATH": str(Path(__file__).parent)}
    worker = subprocess.Popen(
        [FAUST_PYTHON, "-m", "faust", "-A", "faust_counter", "worker", "-l", "warn",
         "--without-web"], cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT)
    yield worker
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    output.close()


def worker_log(tmp_path: Path) -> str:
    return (tmp_path / "worker.log").read_text(errors="replace")[-4000:]


def test_a_faust_counting_agent_counts_every_record_once(
        wire: Wire, faust_worker: subprocess.Popen[bytes], tmp_path: Path) -> None:
    keys = [WORDS[(i * i + i // 3) % len(WORDS)] for i in range(COUNT)]
    producer = KafkaProducer(bootstrap_servers=[wire.bootstrap])
    for key in keys:              # the app's value type is str, serialized as JSON
        producer.send("words", key=key.encode(), value=b'"x"')
    producer.flush()
    producer.close()
    expected = Counter(keys)

    # each key's counts, in the order the agent sent them: 1, 2, ... up to its total
    sent: dict[str, list[int]] = {}
    consumer = KafkaConsumer(bootstrap_servers=[wire.bootstrap], group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    consumer.assign([TopicPartition("counts", p) for p in range(2)])
    deadline = time.monotonic() + 60
    while sum(len(v) for v in sent.values()) < COUNT:
        assert faust_worker.poll() is None, "the worker stopped:\n" + worker_log(tmp_path)
        assert time.monotonic() < deadline, \
            f"counted {sent} of {expected} in 60 s:\n" + worker_log(tmp_path)
        for messages in consumer.poll(timeout_ms=200).values():
            for m in messages:
                sent.setdefault(m.key.decode(), []).append(int(m.value))
    consumer.close()

    assert sent == {key: list(range(1, total + 1)) for key, total in expected.items()}

    # the table's changelog is a compacted topic whose last value per key is the count
    changelog = "counter-word_counts-changelog"
    assert wire.log.describe_topic(changelog).config["cleanup.policy"] == "compact"
    table: dict[str, int] = {}
    for partition in range(wire.log.partition_count(changelog) or 0):
        for m in wire.log.fetch(LogPartition(changelog, partition), 0, max_records=10_000):
            table[m.key.decode().strip('"')] = int(m.value)
    assert table == dict(expected)

    # and the worker's group committed every record of "words"
    while sum(o.committed for o in wire.log.group_offsets("counter")
              if o.topic == "words") < COUNT:
        assert time.monotonic() < deadline, "the worker did not commit:\n" + \
            worker_log(tmp_path)
        time.sleep(0.1)
