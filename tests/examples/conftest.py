"""The ``workers`` fixture: worker processes killed at the end of each test."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from example_helpers import Worker  # noqa: E402


@pytest.fixture
def workers():
    started: list[Worker] = []

    def start(args: list[str], datadir: Path) -> Worker:
        worker = Worker(args, datadir)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait()
