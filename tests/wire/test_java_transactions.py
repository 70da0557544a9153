"""Kafka's Java client (kafka-clients, the version in tests/wire/java/pom.xml) with
transactions against the server: its transactional producer commits and aborts and is
fenced by a newer producer with the same transactional.id; its read_committed consumer
reads only the committed records and reaches the end offset past the markers; its
read_uncommitted consumer reads the aborted records too, as on Kafka (decisions
960-962). Skipped, with the reason, where java or the jars are missing."""
from __future__ import annotations

import subprocess

import pytest

from tests.wire.conftest import Wire
from tests.wire.test_java_client import JARS, JAVA, JAVA_DIR, VERSION

pytestmark = pytest.mark.skipif(
    JAVA is None or not (JARS / f"kafka-clients-{VERSION}.jar").exists(),
    reason=f"needs java 11+ and kafka-clients {VERSION} in {JARS} "
           "(mvn -q -f tests/wire/java/pom.xml dependency:copy-dependencies)")


def test_java_transactions_commit_abort_fence_and_read_committed(wire: Wire) -> None:
    wire.log.create_topic("java-payments", 1)
    assert JAVA is not None
    done = subprocess.run(
        [JAVA, "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", f"{JARS}/*",
         str(JAVA_DIR / "JavaTransactions.java"), wire.bootstrap, "java-payments"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]

    # 7 records and 4 markers: 2 commits, the abort, and the abort of the fenced
    # producer's open transaction (written when the newer one initialised)
    assert done.stdout.splitlines() == [
        "fenced",
        "read_committed kept-0,kept-1,kept-2,kept-3 position 11 end 11",
        ("read_uncommitted kept-0,kept-1,kept-2,dropped-0,dropped-1,fenced-0,kept-3 "
         "position 11 end 11")]
