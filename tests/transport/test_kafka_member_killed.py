"""A group member in another OS process is SIGKILLed: after its session times out the
surviving member takes its partitions over and reads what it had not committed.

Both members use the eager ``range`` assignor (set through ``broker_config``), which
also covers the non-default rebalance protocol (decision 601)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from streamkit.transport.kafka import KafkaBroker
from streamkit.types import OutgoingRecord, TopicPartition

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SESSION = 3.0
EAGER = {"consumer": {"partition.assignment.strategy": "range"}}

MEMBER = textwrap.dedent("""
    import json, sys
    from streamkit.transport.kafka import KafkaBroker
    url, group, topic = sys.argv[1:4]
    broker = KafkaBroker(url, config=%r)
    consumer = broker.group_consumer(group, [topic], session_timeout=%s)
    seen = None
    while True:
        consumer.poll(100, 0.05)       # never commits: a crash loses nothing
        owned = sorted(p for _, p in consumer.assignment())
        if owned != seen:
            seen = owned
            print(json.dumps(owned), flush=True)
""" % (EAGER, SESSION))


def test_survivor_takes_over_the_partitions_of_a_killed_member(tansu, topic_name,
                                                              tmp_path: Path):
    broker = KafkaBroker(tansu, config=EAGER)
    broker.create_topic(topic_name, partitions=4)
    broker.produce(topic_name, [OutgoingRecord(b"k%d" % i, b"v", partition=i % 4)
                                for i in range(40)])
    group = f"g-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "member.py"
    script.write_text(MEMBER)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen([sys.executable, str(script), broker.url, group, topic_name],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, env=env)
    try:
        # Let the child own everything first, then join: the group splits.
        for line in child.stdout:
            if json.loads(line) == [0, 1, 2, 3]:
                break
        survivor = broker.group_consumer(group, [topic_name], session_timeout=SESSION)
        got = []
        deadline = time.monotonic() + 30
        while len(survivor.assignment()) != 2 and time.monotonic() < deadline:
            got += survivor.poll(100, 0.05)
        assert len(survivor.assignment()) == 2
        killed_had = {TopicPartition(topic_name, p) for p in range(4)} - survivor.assignment()

        child.send_signal(signal.SIGKILL)
        child.wait()
        killed_at = time.monotonic()
        while len(survivor.assignment()) != 4 and time.monotonic() < killed_at + 30:
            got += survivor.poll(100, 0.05)
        assert len(survivor.assignment()) == 4
        took = time.monotonic() - killed_at
        assert took < SESSION + 10

        # Nothing was committed by the killed member: its partitions start over.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and \
                {(m.partition, m.offset) for m in got if m.tp in killed_had} != \
                {(tp.partition, o) for tp in killed_had for o in range(10)}:
            got += survivor.poll(100, 0.05)
        assert {(m.partition, m.offset) for m in got if m.tp in killed_had} == \
            {(tp.partition, o) for tp in killed_had for o in range(10)}
        survivor.close()
    finally:
        broker.close()
        if child.poll() is None:
            child.kill()
            child.wait()
