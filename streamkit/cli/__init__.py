"""The ``streamkit`` command line (click). See docs/reference.md, "Command line"."""
from __future__ import annotations

from streamkit.cli.custom import AppCommand, argument, option
from streamkit.cli.main import app_main, cli, main

__all__ = ["AppCommand", "app_main", "argument", "cli", "main", "option"]
