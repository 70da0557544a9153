"""The ``streamkit`` command line (click). See docs/reference.md, "Command line"."""
from __future__ import annotations

from streamkit.cli.main import app_main, cli, main

__all__ = ["app_main", "cli", "main"]
