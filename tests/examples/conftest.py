"""The ``workers`` fixture: worker processes killed at the end of each test."""
from __future__ import annotations

import pytest
from example_helpers import Worker


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
