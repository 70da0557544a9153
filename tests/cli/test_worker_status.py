"""What a worker tells about itself: without a terminal a status line logged every
``--status-interval``, partitions assigned and revoked, a summary when it stops; on a
terminal a status line only when its numbers change."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pipes import readable

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "examples"))
EXAMPLES = REPO / "examples"
STREAMKIT = [sys.executable, "-c", "from streamkit.cli import main; main()"]
COUNT = str(EXAMPLES / "stream_count_vendor_trips.py")


def env_for(datadir: Path) -> dict[str, str]:
    env = dict(os.environ, STREAMKIT_DATADIR=str(datadir), PYTHONUNBUFFERED="1")
    env.pop("STREAMKIT_BROKER", None)
    env.pop("STREAMKIT_DEBUG", None)
    return env


def read_until(stream, predicate, timeout: float = 30.0) -> str:
    """Read the pipe ``stream`` until ``predicate(text so far)``."""
    text = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = _read_fd(stream.fileno(), 0.1)
        if chunk:
            text += chunk
            if predicate(text.decode(errors="replace")):
                return text.decode(errors="replace")
    pytest.fail("never matched:\n" + text.decode(errors="replace")[-3000:])


def test_a_piped_worker_logs_status_partitions_and_a_summary(tmp_path):
    from example_helpers import produce_sample
    produce_sample(tmp_path)
    proc = subprocess.Popen([*STREAMKIT, "worker", COUNT, "--status-interval", "0.3"],
                            env=env_for(tmp_path), cwd=tmp_path, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # idle after the 300 rides: the status line goes on, once per interval
        seen = read_until(proc.stderr, lambda t: len(re.findall(
            r"INFO streamkit.worker: status: .*processed 300 ", t)) >= 3)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    err = rest.decode(errors="replace")
    assert proc.returncode == 0, err
    log = seen + err
    assert re.search(r"INFO streamkit.worker: partitions assigned: .*yellow_taxi_ride\.json "
                     r"\[0, 1, 2, 3\]", log), log[-3000:]
    assert re.search(r"INFO streamkit.worker: status: \d+ events/s  processed \d+  lag \d+  "
                     r"tables vendor_rides=\d+", log)
    assert re.search(r"partitions revoked: .*yellow_taxi_ride\.json \[0, 1, 2, 3\]", log)
    summary = re.search(r"worker taxi-count stopped after [\d.]+ s: 300 events processed "
                        r"\(@count_rides 300\); committed offsets: (.*)", log)
    assert summary, log[-3000:]
    committed = dict(re.findall(r"(\S+\[\d\])=(\d+)", summary.group(1)))
    # every ride read and committed: the input's offsets add up to the 300 rides
    assert sum(int(v) for k, v in committed.items()
               if k.startswith("yellow_taxi_ride.json[")) == 300


def test_status_interval_0_turns_the_status_off(tmp_path):
    proc = subprocess.Popen([*STREAMKIT, "worker", COUNT, "--status-interval", "0"],
                            env=env_for(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        seen = read_until(proc.stderr, lambda t: " ready:" in t)
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    err = seen + rest.decode(errors="replace")
    assert proc.returncode == 0, err
    assert "stopped after" in err and "status:" not in err


def test_on_a_terminal_an_idle_worker_prints_no_new_status_lines(tmp_path):
    import pty
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*STREAMKIT, "worker", COUNT, "--status-interval", "0.2"],
                            env=env_for(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=follower, text=True)
    os.close(follower)
    text = b""
    try:
        deadline = time.monotonic() + 30
        while b" ready:" not in text and time.monotonic() < deadline:
            text += _read_fd(leader, 0.2)
        ready_at = len(text)
        end = time.monotonic() + 2.5          # a dozen intervals, nothing to process
        while time.monotonic() < end:
            text += _read_fd(leader, 0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        text += _read_fd(leader, 0.5)
        os.close(leader)
    assert proc.returncode == 0, text.decode(errors="replace")
    idle = text[ready_at:].decode(errors="replace")
    lines = re.findall(r"\[\d\d:\d\d:\d\d\] \d+ events/s  processed 0  lag 0", idle)
    assert len(lines) == 1, idle        # the first report, then nothing changed
    assert "INFO streamkit.worker: status:" not in idle     # printed, not logged


def _read_fd(fd: int, seconds: float) -> bytes:
    """What ``fd`` (a pipe or a terminal) has within ``seconds``."""
    if not readable(fd, seconds):
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:            # the worker closed its terminal
        return b""
