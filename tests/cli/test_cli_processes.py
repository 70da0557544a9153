"""The ``streamkit`` command as a real process: workers stopped by signals, the demo,
one-line errors, and a store locked by another worker."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "examples"))
EXAMPLES = REPO / "examples"
STREAMKIT = [sys.executable, "-c", "from streamkit.cli import main; main()"]


def env_for(datadir: Path) -> dict[str, str]:
    env = dict(os.environ, STREAMKIT_DATADIR=str(datadir), PYTHONUNBUFFERED="1")
    env.pop("STREAMKIT_BROKER", None)
    env.pop("STREAMKIT_DEBUG", None)
    return env


def streamkit(*args: str, datadir: Path, timeout: float = 60, input: str | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STREAMKIT, *args], env=env_for(datadir), cwd=datadir,
                          capture_output=True, text=True, timeout=timeout, input=input)


def start(*args: str, datadir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*STREAMKIT, *args], env=env_for(datadir), cwd=datadir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_ready(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    """Read stderr lines until the worker logs that it is ready."""
    deadline = time.monotonic() + timeout
    seen = []
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if line:
            seen.append(line)
            if " ready:" in line:
                return "".join(seen)
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("worker not ready:\n" + "".join(seen))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_worker_runs_and_stops_gracefully_on_a_signal(tmp_path, sig):
    proc = start("worker", str(EXAMPLES / "stream_count_vendor_trips.py"),
                 "--loglevel", "info", "--concurrency", "2", datadir=tmp_path)
    wait_ready(proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_worker_broker_option_overrides_the_app(tmp_path):
    elsewhere = tmp_path / "other-log"
    proc = start("worker", str(EXAMPLES / "stream_taxi_json.py"), "--broker",
                 f"log://{elsewhere}", datadir=tmp_path)
    wait_ready(proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert (elsewhere / "topics").exists() or any(elsewhere.iterdir())
    assert not (tmp_path / "log").exists()


def test_a_store_locked_by_another_process_fails_the_worker_in_one_line(tmp_path):
    """RocksDB lets one process open a store; the worker waits for the lock (a rebalance
    hands partitions over) and then gives up with one clear line and exit 1."""
    from streamkit.tables.stores import open_store
    from example_helpers import produce_sample

    produce_sample(tmp_path)
    tables = tmp_path / "taxi-count" / "tables"
    held = [open_store("rocksdb://", tables, f"vendor_rides-{p}") for p in range(4)]
    try:
        result = streamkit("worker", str(EXAMPLES / "stream_count_vendor_trips.py"),
                           datadir=tmp_path, timeout=60)
    finally:
        for store in held:
            store.close()
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "is locked" in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_unknown_app_and_bad_broker_fail_in_one_line(tmp_path):
    result = streamkit("worker", "no_such_app_module", datadir=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: no_such_app_module: no module named 'no_such_app_module' (run from the "
        "directory that holds it, or give path/to/file.py)"]
    result = streamkit("worker", str(EXAMPLES / "stream_taxi_json.py"), "--broker",
                       "kafka//oops", datadir=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "has no scheme" in result.stderr
    assert streamkit("send", "other", "x", datadir=tmp_path).returncode == 0  # a log
    debug = streamkit("--debug", "tail", "nope", datadir=tmp_path)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_python_app_py_worker_and_agents(tmp_path):
    script = str(EXAMPLES / "stream_taxi_json.py")
    listed = subprocess.run([sys.executable, script, "agents"], env=env_for(tmp_path),
                            cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0 and "@start_reading" in listed.stdout
    proc = subprocess.Popen([sys.executable, script, "worker"], env=env_for(tmp_path),
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    wait_ready(proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_demo_finishes_by_itself_with_a_summary(tmp_path):
    started = time.monotonic()
    result = streamkit("demo", "--datadir", str(tmp_path / "demo"), datadir=tmp_path,
                       timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "window 00:00-00:01 vendor" in out
    assert "counted 300 rides" in out
    assert "summary after" in out and "300 rides produced, 300 counted" in out
    assert "64 windows closed, 30 rides of $40 or more" in out
    assert "vendor 1: 116, vendor 2: 184  (matches the 300 rides produced)" in out
    assert elapsed < 30
    # --datadir keeps the log and the tables
    topics = streamkit("topics", "--broker", f"log://{tmp_path / 'demo' / 'log'}",
                       datadir=tmp_path)
    assert "yellow_taxi_ride.json" in topics.stdout
    assert "demo-vendor_rides-changelog" in topics.stdout


def test_demo_cleans_up_and_honours_its_time_limit(tmp_path):
    started = time.monotonic()
    result = streamkit("demo", "--seconds", "1", datadir=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 15
    assert "summary after" in result.stdout
    # nothing written in the current directory; the temporary folder is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    folder = result.stdout.split("embedded log at ", 1)[1].split()[0]
    assert not Path(folder).exists()


def test_reset_is_refused_while_a_worker_runs(tmp_path):
    proc = start("worker", str(EXAMPLES / "stream_count_vendor_trips.py"), datadir=tmp_path)
    wait_ready(proc)
    try:
        result = streamkit("reset", str(EXAMPLES / "stream_count_vendor_trips.py"), "--yes",
                           datadir=tmp_path)
        assert result.returncode == 1
        assert "still has 1 live member" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    result = streamkit("reset", str(EXAMPLES / "stream_count_vendor_trips.py"), "--yes",
                       datadir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "taxi-count").exists()


def test_worker_web_port_serves_the_tables(tmp_path):
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    import json
    import socket
    import urllib.request
    from example_helpers import produce_sample

    produce_sample(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # the example says web_enabled=False; --web-port turns the server on
    proc = start("worker", str(EXAMPLES / "stream_count_vendor_trips.py"),
                 "--web-port", str(port), "--web-host", "127.0.0.1", datadir=tmp_path)
    wait_ready(proc)
    try:
        deadline = time.monotonic() + 20
        body = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/table/vendor_rides", timeout=2) as reply:
                    body = reply.read().decode()
                if "184" in body and "116" in body:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert body is not None and "184" in body and "116" in body, body
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
