"""Fixtures of the Avro tests: a registry on a fresh in-memory broker per test."""
from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from streamkit.avro import SchemaRegistry, codec
from streamkit.transport import connect

_names = itertools.count()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def broker():
    """A memory:// broker of its own (memory://NAME is shared within the process)."""
    b = connect(f"memory://avro-test-{os.getpid()}-{next(_names)}")
    yield b
    b.close()


@pytest.fixture
def registry(broker) -> SchemaRegistry:
    return SchemaRegistry(broker)


@pytest.fixture
def default_registry(registry):
    """Make ``registry`` the default of AvroCodecs made without one (Record
    serializer="avro" uses the process-wide codec)."""
    previous = codec._default
    codec.use_registry(registry)
    yield registry
    codec._default = previous


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """`streamkit registry serve` on a free port, its registry in a log:// directory."""
    logdir = tmp_path_factory.mktemp("registry") / "log"
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log_path = logdir.parent / "server.log"
    log_file = open(log_path, "wb")      # a file, not a pipe nobody reads
    proc = subprocess.Popen(
        # `streamkit registry serve`: the console script's entry point, without needing PATH
        [sys.executable, "-c", "from streamkit.cli import main; main()", "registry", "serve",
         "--port", str(port), "--broker", f"log://{logdir}"],
        cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    log_file.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                pytest.fail("registry server did not start: "
                            f"{log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
    yield {"url": url, "broker": f"log://{logdir}", "proc": proc}
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=10) == 0     # a clean stop on SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
