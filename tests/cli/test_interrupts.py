"""Ctrl-C (SIGINT) in ``streamkit send -`` and in the producer example: what was sent
is written and said, no traceback, exit 130."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pipes import readable

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
STREAMKIT = [sys.executable, "-c", "from streamkit.cli import main; main()"]


def env_for(datadir: Path) -> dict[str, str]:
    env = dict(os.environ, STREAMKIT_DATADIR=str(datadir), PYTHONUNBUFFERED="1")
    env.pop("STREAMKIT_BROKER", None)
    env.pop("STREAMKIT_DEBUG", None)
    return env


def values_in(datadir: Path, topic: str) -> list[str]:
    done = subprocess.run([*STREAMKIT, "tail", topic, "--from-beginning", "--timeout",
                           "0.5", "--format", "raw"], env=env_for(datadir), cwd=datadir,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_ctrl_c_in_send_from_stdin_sends_what_was_read_and_exits_130(tmp_path):
    proc = subprocess.Popen([*STREAMKIT, "send", "lines", "-"], env=env_for(tmp_path),
                            cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    proc.stdin.write("one\ntwo\nthree\n")
    proc.stdin.flush()
    # piped lines wait for a full batch; the process is now reading stdin
    _wait_until_reading(proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip() == "interrupted after 3 messages, last offset lines[0]@2"
    assert out.splitlines() == ["lines[0]@0", "lines[0]@1", "lines[0]@2"]
    assert values_in(tmp_path, "lines") == ["one", "two", "three"]


def test_ctrl_c_before_any_line_sends_nothing(tmp_path):
    proc = subprocess.Popen([*STREAMKIT, "send", "lines", "-"], env=env_for(tmp_path),
                            cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_until_reading(proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip() == "interrupted after 0 messages, last offset none"
    assert out == ""


def test_ctrl_c_stops_the_producer_example_without_a_traceback(tmp_path):
    proc = subprocess.Popen([sys.executable, str(REPO / "examples" / "producer_taxi_json.py"),
                             "--rate", "20"], env=env_for(tmp_path), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)                      # about 40 rides in
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err == ""
    said = out.strip()
    assert said.startswith("interrupted: sent ") and said.endswith(
        " rides to yellow_taxi_ride.json on log://"), said
    sent = int(said.split()[2])
    assert 5 <= sent < 300
    rides = [json.loads(v) for v in values_in(tmp_path, "yellow_taxi_ride.json")]
    assert len(rides) == sent            # every ride it counted is in the log


def _wait_until_reading(proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    """Wait until ``proc`` blocks reading stdin (its import and start-up are done):
    its state in /proc is sleeping with no CPU time moving."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(stat[11]) + int(stat[12])      # utime + stime
        if stat[0] == "S" and ticks == last and _wchan_is_read(proc.pid):
            return
        last = ticks
        time.sleep(0.2)
    pytest.fail("the process never waited for stdin")


def _wchan_is_read(pid: int) -> bool:
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return True                 # no wchan here: CPU time alone decides
    return "read" in wchan or "pipe" in wchan or wchan in ("", "0")


def test_send_from_a_slow_pipe_sends_each_line_without_waiting_for_a_batch(tmp_path):
    proc = subprocess.Popen([*STREAMKIT, "send", "lines", "-"], env=env_for(tmp_path),
                            cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for n in range(3):
            proc.stdin.write(f"line {n}\n")
            proc.stdin.flush()           # and the pipe stays open
            assert readable(proc.stdout, 20), \
                f"line {n} was not sent while the pipe stayed open"
            assert proc.stdout.readline() == f"lines[0]@{n}\n"
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert values_in(tmp_path, "lines") == ["line 0", "line 1", "line 2"]
