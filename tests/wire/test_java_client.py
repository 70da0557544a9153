"""Kafka's Java client (kafka-clients, the version in tests/wire/java/pom.xml) against
the server: its Admin creates a topic, its idempotent producer (acks=all; uncompressed,
and with zstd) writes keyed records, and a consumer in a group reads them all and
commits; kafka-python then sees each record once in the log and the group's committed
offsets at the partitions' ends.

The jars come from ``mvn -q -f tests/wire/java/pom.xml dependency:copy-dependencies``
(.ci/run runs it) into ~/.cache/streamkit/java/kafka-clients-<version> (decision 950);
the program runs in Java's source-file mode (Java 11+), so nothing is built. Skipped,
with the reason, where java or the jars are missing."""
from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

kafka = pytest.importorskip("kafka", reason="kafka-python is not installed")

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition  # noqa: E402

from tests.wire.conftest import Wire  # noqa: E402

JAVA_DIR = Path(__file__).parent / "java"
POM = "{http://maven.apache.org/POM/4.0.0}"


def kafka_clients_version() -> str:
    properties = ET.parse(JAVA_DIR / "pom.xml").getroot().find(f"{POM}properties")
    assert properties is not None
    return properties.findtext(f"{POM}kafka.version", "")


VERSION = kafka_clients_version()
JARS = Path.home() / ".cache" / "streamkit" / "java" / f"kafka-clients-{VERSION}"
JAVA = shutil.which("java")
pytestmark = pytest.mark.skipif(
    JAVA is None or not (JARS / f"kafka-clients-{VERSION}.jar").exists(),
    reason=f"needs java 11+ and kafka-clients {VERSION} in {JARS} "
           "(mvn -q -f tests/wire/java/pom.xml dependency:copy-dependencies)")

COUNT = 300


def run_java_client(wire: Wire, topic: str, group: str, compression: str
                    ) -> list[tuple[int, int, str, str]]:
    """(partition, offset, key, value) of each record the Java consumer read."""
    assert JAVA is not None
    done = subprocess.run(
        [JAVA, "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", f"{JARS}/*",
         str(JAVA_DIR / "JavaClient.java"), wire.bootstrap, topic, group, str(COUNT),
         compression],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    read = []
    for line in done.stdout.splitlines():
        if line.startswith("record "):
            _, partition, offset, key, value = line.split()
            read.append((int(partition), int(offset), key, value))
    return read


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_java_producer_and_consumer_group(wire: Wire, compression: str) -> None:
    read = run_java_client(wire, "java-orders", "java-group", compression)

    # the Java consumer read every record once, in offset order within each partition
    assert sorted((k, v) for _p, _o, k, v in read) == \
        sorted((f"k{i}", f"v{i}") for i in range(COUNT))
    for partition in range(3):
        offsets = [o for p, o, _k, _v in read if p == partition]
        assert offsets == list(range(len(offsets)))

    # the log holds each record once (no duplicate from the idempotent producer's
    # retries), in the partitions the Java client reported
    consumer = KafkaConsumer(bootstrap_servers=[wire.bootstrap], group_id=None,
                             enable_auto_commit=False, consumer_timeout_ms=2000)
    parts = [TopicPartition("java-orders", p) for p in range(3)]
    consumer.assign(parts)
    consumer.seek_to_beginning()
    in_log = [(m.partition, m.offset, m.key.decode(), m.value.decode()) for m in consumer]
    ends = consumer.end_offsets(parts)
    consumer.close()
    assert sorted(in_log) == sorted(read)
    assert Counter(k for _p, _o, k, _v in in_log).most_common(1)[0][1] == 1

    # the group committed the end of every partition, as kafka-python and the log's
    # group store (what `streamkit groups` and log:// consumers of the group use) see it
    admin = KafkaAdminClient(bootstrap_servers=[wire.bootstrap])
    try:
        committed = admin.list_group_offsets("java-group")["java-group"]
    finally:
        admin.close()
    assert sum(ends.values()) == COUNT
    assert {tp.partition: meta.offset for tp, meta in committed.items()} == \
        {tp.partition: ends[tp] for tp in parts}
    assert {o.partition: o.committed for o in wire.log.group_offsets("java-group")} == \
        {tp.partition: ends[tp] for tp in parts}
