"""The course's kafka-python scripts (the project's own copies in examples/kafka_python)
as processes against the server, run as docs/broker.md says to replace the course's
docker-compose (``--auto-create-topics``, as Kafka's default): the producer sends the
CSV's rows, the log keeps them, the consumer prints them back, without a group
(``group_id=None``) and in one, as the course runs it."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("kafka", reason="kafka-python is not installed")

from streamkit.types import TopicPartition
from tests.pipes import readable
from tests.wire.conftest import Wire, start_wire

SCRIPTS = Path(__file__).resolve().parents[2] / "examples" / "kafka_python"
RIDES = SCRIPTS.parent / "data" / "rides.csv"


@pytest.fixture
def course_wire(tmp_path: Path) -> Iterator[Wire]:
    yield from start_wire(tmp_path, auto_create_topics=True)


def script_env(wire: Wire) -> dict[str, str]:
    return dict(os.environ, BOOTSTRAP_SERVERS=wire.bootstrap, PYTHONUNBUFFERED="1")


def produce_rides(wire: Wire) -> list[dict[str, str]]:
    """Run the producer script over the whole CSV; returns the CSV's rows."""
    with open(RIDES, newline="") as f:
        rows = list(csv.DictReader(f))
    produced = subprocess.run([sys.executable, str(SCRIPTS / "producer.py")],
                              env=script_env(wire), capture_output=True, text=True,
                              timeout=60)
    assert produced.returncode == 0, produced.stderr
    return rows


def test_the_course_producer_sends_every_csv_row_as_json(course_wire: Wire,
                                                         tmp_path: Path) -> None:
    few = tmp_path / "rides.csv"              # the CSV path: the one thing changed
    with open(RIDES, newline="") as f:
        rows = list(csv.DictReader(f))[:40]
    with open(few, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    done = subprocess.run([sys.executable, str(SCRIPTS / "producer.py"), str(few)],
                          env=script_env(course_wire), capture_output=True, text=True,
                          timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "sent 40 rides to rides_json"
    messages = course_wire.log.fetch(TopicPartition("rides_json", 0), 0)
    assert [json.loads(m.value) for m in messages] == rows      # created on first send


def test_the_course_consumer_prints_the_rides_without_a_group(course_wire: Wire) -> None:
    rows = produce_rides(course_wire)

    consumer = subprocess.Popen([sys.executable, str(SCRIPTS / "consumer.py")],
                                env=script_env(course_wire), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert consumer.stdout is not None
        deadline = time.monotonic() + 30
        while len(lines) < len(rows) and time.monotonic() < deadline:
            line = consumer.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
    finally:
        consumer.terminate()
        _out, err = consumer.communicate(timeout=20)
    assert len(lines) == len(rows), err
    assert lines[:2] == [
        f"partition=0 offset={i} vendor={rows[i]['VendorID']} "
        f"total_amount={rows[i]['total_amount']}" for i in range(2)]
    assert lines[-1].startswith(f"partition=0 offset={len(rows) - 1} ")


def read_lines(process: subprocess.Popen[str], count: int, within: float = 30) -> list[str]:
    """Up to ``count`` lines of ``process``'s output, waiting at most ``within`` seconds
    (read from its pipe directly: a silent process must not block the test)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    data = b""
    deadline = time.monotonic() + within
    while data.count(b"\n") < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not readable(fd, remaining):
            break
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        data += chunk
    return [line.strip() for line in data.decode().splitlines()][:count]


def test_the_course_consumer_in_a_group_commits_what_it_printed(course_wire: Wire) -> None:
    rows = produce_rides(course_wire)
    group = "consumer.group.id.json-example.1"

    consumer = subprocess.Popen([sys.executable, str(SCRIPTS / "consumer.py"), group],
                                env=script_env(course_wire), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        lines = read_lines(consumer, len(rows))
    finally:
        consumer.send_signal(signal.SIGINT)       # Ctrl-C: the script closes, committing
        _out, err = consumer.communicate(timeout=20)
    assert len(lines) == len(rows), err
    assert consumer.returncode == 0, err
    # the group's offset, as the log keeps it for every client (streamkit groups too)
    offsets = course_wire.log.group_offsets(group)
    assert [(o.topic, o.partition, o.committed) for o in offsets] == [
        ("rides_json", 0, len(rows))]

    again = subprocess.Popen([sys.executable, str(SCRIPTS / "consumer.py"), group],
                             env=script_env(course_wire), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert read_lines(again, 1, within=4) == []     # resumes after what it printed
    finally:
        again.send_signal(signal.SIGINT)
        again.communicate(timeout=20)
