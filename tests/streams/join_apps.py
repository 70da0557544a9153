"""Apps for the join tests, on ``memory://`` (memory stores) or ``log://`` (RocksDB)."""
from __future__ import annotations

import itertools
from pathlib import Path

import streamkit

_ids = itertools.count()


def make_app(broker: str, tmp_path: Path, prefix: str = "join") -> streamkit.App:
    """A new App (its own id) on ``broker`` ("memory" or "log"), committing often."""
    name = f"{prefix}{next(_ids)}"
    if broker == "memory":
        return streamkit.App(name, broker=f"memory://{name}", store="memory://",
                             web_enabled=False, commit_interval=0.05)
    return streamkit.App(name, broker="log://", store="rocksdb://",
                         datadir=str(tmp_path), web_enabled=False, commit_interval=0.05)
