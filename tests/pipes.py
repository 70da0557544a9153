"""Waiting for a child process's pipe in a test, with ``poll``: ``select.select`` refuses
a descriptor numbered 1024 or more, which a long test run reaches."""
from __future__ import annotations

import select
from typing import IO, Any


def readable(pipe: int | IO[Any], seconds: float) -> bool:
    """True once ``pipe`` (a descriptor or a file) has something to read (or is
    closed), False if ``seconds`` pass first."""
    poller = select.poll()
    poller.register(pipe, select.POLLIN)
    return bool(poller.poll(max(0.0, seconds) * 1000))
