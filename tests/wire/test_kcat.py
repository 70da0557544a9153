"""kcat (Debian's package, librdkafka's command-line client) against the server: it
lists the log's topics, produces keyed records the log keeps, and consumes them back.
Skipped where kcat is not installed (.ci/run installs it with apt-get)."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from streamkit.types import OutgoingRecord, TopicPartition
from tests.wire.conftest import Wire

KCAT = shutil.which("kcat") or shutil.which("kafkacat")
pytestmark = pytest.mark.skipif(KCAT is None, reason="kcat is not installed "
                                "(apt-get install kcat)")


def kcat(wire: Wire, *args: str, stdin: str | None = None) -> str:
    assert KCAT is not None
    done = subprocess.run([KCAT, "-b", wire.bootstrap, *args], input=stdin,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kcat_lists_the_logs_topics(wire: Wire) -> None:
    wire.log.create_topic("rides", 3)
    listing = json.loads(kcat(wire, "-L", "-J"))
    assert [(b["id"], b["name"]) for b in listing["brokers"]] == [(0, wire.bootstrap)]
    assert [(t["topic"], [p["partition"] for p in t["partitions"]])
            for t in listing["topics"]] == [("rides", [0, 1, 2])]


def test_kcat_produces_and_consumes(wire: Wire) -> None:
    wire.log.create_topic("rides", 2)
    wire.log.produce("rides", [OutgoingRecord(b"log", b"from the log", partition=1)])

    kcat(wire, "-P", "-t", "rides", "-p", "0", "-K", ":",
         stdin="vendor1:ride one\nvendor2:ride two\n")
    messages = wire.log.fetch(TopicPartition("rides", 0), 0)
    assert [(m.offset, m.key, m.value) for m in messages] == \
        [(0, b"vendor1", b"ride one"), (1, b"vendor2", b"ride two")]

    out = kcat(wire, "-C", "-t", "rides", "-o", "beginning", "-e", "-q",
               "-f", "%p %o %k=%s\n")
    assert sorted(out.splitlines()) == ["0 0 vendor1=ride one", "0 1 vendor2=ride two",
                                        "1 0 log=from the log"]
