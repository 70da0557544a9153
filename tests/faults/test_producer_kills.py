"""Producer processes SIGKILLed at random moments, acks=1 and acks=all, one after
another and two at once, appending to the same topic: every acknowledged record is
readable at its offset with its value, no offset twice, none missing; the torn tail of
a killed write is cut by the next append, with a warning.

The random trials are ``kill_trial`` of tests/faults/trials.py (timing makes them
differ from run to run); ``tools/fault_run.py --kind kill`` runs hundreds.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition

from .logfiles import segments
from .trials import REPO, kill_trial

TP = TopicPartition("t", 0)
BIG_WRITE = Path(__file__).resolve().parent / "apps" / "big_write.py"


@pytest.mark.parametrize("acks", [1, "all"])
def test_producers_killed_at_random_moments_lose_and_repeat_nothing_acknowledged(
        tmp_path: Path, acks: int | str) -> None:
    result = kill_trial(tmp_path / "log", seed=7 if acks == 1 else 8, acks=acks, rounds=3)
    assert result.ok, result.report()
    assert result.acknowledged > 0


def _kill_during_a_big_write(root: Path, attempts: int = 5) -> int:
    """SIGKILL a producer as soon as its write of ~32 MB shows in the segment file,
    until a kill leaves the write torn; return the segment's size before that write."""
    segment = segments(root, "t")[-1]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(attempts):
        before = segment.stat().st_size
        proc = subprocess.Popen([sys.executable, str(BIG_WRITE), str(root), "t", "1000",
                                 "32768"], stdout=subprocess.PIPE, env=env)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + 30
        while segment.stat().st_size == before and time.monotonic() < deadline:
            pass                                   # the write has not begun
        proc.send_signal(signal.SIGKILL)
        out = proc.communicate(timeout=30)[0]
        if b"done" not in out and segment.stat().st_size - before < 1000 * 32768:
            return before
    pytest.skip(f"no kill landed inside the write in {attempts} attempts")


def test_the_torn_tail_of_a_killed_write_is_cut_by_the_next_append_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "log"
    broker = connect(f"log://{root}")
    broker.create_topic("t", partitions=1)
    broker.produce("t", [OutgoingRecord(None, b"r%d" % i, None, None, 0)
                         for i in range(100)], acks="all")
    broker.close()
    whole = _kill_during_a_big_write(root)
    segment = segments(root, "t")[-1]
    kept = segment.read_bytes()[:whole]
    assert segment.stat().st_size > whole                  # a torn tail is there

    broker = connect(f"log://{root}")
    try:
        assert [m.value for m in broker.fetch(TP, 0, max_records=10_000)] == \
            [b"r%d" % i for i in range(100)]                 # none of the torn write
        with caplog.at_level(logging.WARNING, logger="streamkit.log"):
            meta = broker.produce("t", [OutgoingRecord(None, b"after", None, None, 0)],
                                  acks="all")
        assert meta[0].offset == 100                         # no offset lost or reused
        assert any("t[0]: cut" in r.getMessage() and "never completed" in r.getMessage()
                   for r in caplog.records), caplog.text
        data = segment.read_bytes()
        assert data.startswith(kept) and b"after" in data[whole:]
        assert len(data) < whole + 1000                      # the torn bytes are gone
        assert [m.value for m in broker.fetch(TP, 0, max_records=10_000)] == \
            [b"r%d" % i for i in range(100)] + [b"after"]
    finally:
        broker.close()
