"""Fixtures of the embedded-log tests: a fresh log directory or memory name per test."""
from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

from streamkit.transport import connect

REPO = Path(__file__).resolve().parents[2]
_names = itertools.count()


def subprocess_env() -> dict[str, str]:
    """Environment for child Python processes that import streamkit from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


PYTHON = sys.executable


@pytest.fixture
def child_env() -> dict[str, str]:
    return subprocess_env()


@pytest.fixture(params=["log", "memory"])
def url(request, tmp_path) -> str:
    """A broker URL of each kind, empty."""
    if request.param == "log":
        return f"log://{tmp_path / 'log'}"
    return f"memory://test-{os.getpid()}-{next(_names)}"


@pytest.fixture
def log_url(tmp_path) -> str:
    return f"log://{tmp_path / 'log'}"


@pytest.fixture
def broker(url):
    b = connect(url, default_partitions=4)
    yield b
    b.close()
