"""An app written to a file in a test's directory, as the command line loads it."""
from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest


def load_app_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                  source: str) -> tuple[Path, dict[str, Any]]:
    """Write ``source`` to ``tmp_path/name`` and run it, with the test's directory as
    the working and data directory (and no broker from the environment); returns the
    file and the module's names."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STREAMKIT_DATADIR", str(tmp_path / "stores"))
    monkeypatch.delenv("STREAMKIT_BROKER", raising=False)
    app_file = tmp_path / name
    app_file.write_text(source)
    return app_file, runpy.run_path(str(app_file))
