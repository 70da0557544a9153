"""``streamkit broker`` as a real process: it serves the log in ``<datadir>/log`` (the
one a ``log://`` app there uses), logs its address, and stops with exit status 0 on
SIGTERM or SIGINT."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from confluent_kafka.admin import AdminClient  # noqa: E402

import streamkit  # noqa: E402
from streamkit.wire import cluster_id_for  # noqa: E402

pytestmark = pytest.mark.slow          # real processes, as tests/cli/test_cli_processes.py

STREAMKIT = [sys.executable, "-c", "from streamkit.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_line(proc: subprocess.Popen[str], pattern: str, timeout: float = 30) -> str:
    """stderr up to the first line matching the regex ``pattern``."""
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if line:
            seen += line
            if re.search(pattern, line):
                return seen
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no {pattern!r} from streamkit broker:\n{seen}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_streamkit_broker_serves_the_apps_log_and_stops_on_a_signal(
        tmp_path: Path, sig: signal.Signals) -> None:
    with streamkit.Admin(broker="log://", datadir=tmp_path / "stores") as admin:
        admin.create_topic("rides", 2)        # where an App with the default datadir writes
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("STREAMKIT_DATADIR", None)
    proc = subprocess.Popen([*STREAMKIT, "broker", "--port", str(port),
                             "--status-interval", "0.2"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        started = wait_for_line(proc, "Kafka protocol on")
        root = (tmp_path / "stores" / "log").resolve()
        assert f"127.0.0.1:{port}, serving the log in {root}" in started

        client = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        metadata = client.list_topics(timeout=10)
        assert {name: len(t.partitions) for name, t in metadata.topics.items()} == \
            {"rides": 2}
        assert metadata.cluster_id == cluster_id_for(str(root))
        # the status line counts the client's requests (ApiVersions, Metadata)
        wait_for_line(proc, r"INFO streamkit.wire: \d+ connections, [1-9]\d* requests in 0.2 s")
    finally:
        proc.send_signal(sig)
        try:
            _out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_without_the_broker_extra_it_says_how_to_add_it(tmp_path: Path) -> None:
    no_kio = ("import sys; sys.modules['kio'] = None; "
              "from streamkit.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", no_kio, "broker", "--port", "0"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert done.returncode == 1
    assert "streamkit broker needs the broker extra: pip install -e" in done.stderr
    assert "[broker]" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "stores").exists()      # nothing created before the check


def test_a_taken_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*STREAMKIT, "broker", "--port", str(port)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)

    assert done.returncode == 1
    assert "Error:" in done.stderr and str(port) in done.stderr
    assert "Traceback" not in done.stderr


def test_the_command_line_starts_without_importing_kio() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, streamkit.cli.main; print('kio' in sys.modules)"],
        capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
