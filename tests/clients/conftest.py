"""Fixtures of the client tests: a fresh broker URL of each embedded kind per test."""
from __future__ import annotations

import itertools
import os

import pytest

_names = itertools.count()


@pytest.fixture(params=["log", "memory"])
def url(request, tmp_path) -> str:
    """A broker URL of each kind, empty."""
    if request.param == "log":
        return f"log://{tmp_path / 'log'}"
    return f"memory://clients-{os.getpid()}-{next(_names)}"


@pytest.fixture
def log_url(tmp_path) -> str:
    """An empty log:// directory (for what only files show: fsyncs, processes)."""
    return f"log://{tmp_path / 'log'}"
