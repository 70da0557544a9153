"""What to tell a user to run for a missing extra (``web``, ``avro``, ``kafka``).

The name ``streamkit`` on PyPI belongs to another project, so ``pip install
'streamkit[web]'`` would install something else (decision 510). From a checkout (an
editable install, or the package imported from a clone) the hint is ``pip install -e
'.[web]'`` (the clone's path when it is not the current directory); otherwise it lists
the extra's own requirements, read from the installed metadata.
"""
from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
from pathlib import Path

#: the requirements of each extra, for when no metadata can be read
_FALLBACK = {
    "web": ["starlette", "uvicorn", "prometheus-client"],
    "avro": ["fastavro"],
    "kafka": ["confluent-kafka"],
    "broker": ["kio"],
}


def checkout_root() -> Path | None:
    """The clone streamkit runs from (its ``pyproject.toml`` names the project), or None
    for an installed copy."""
    root = Path(__file__).resolve().parents[2]          # above streamkit/cli/
    pyproject = root / "pyproject.toml"
    try:
        text = pyproject.read_text()
    except OSError:
        return None
    return root if re.search(r'^name\s*=\s*"streamkit"', text, re.M) else None


def install_command(extra: str, *, cwd: Path | None = None) -> str:
    """The ``pip install`` command that adds ``extra`` to the streamkit running now."""
    root = checkout_root()
    if root is not None:
        here = (cwd or Path.cwd()).resolve()
        where = "." if here == root else os.path.relpath(root, here) \
            if root in here.parents else str(root)
        return f"pip install -e {shlex.quote(f'{where}[{extra}]')}"
    return "pip install " + " ".join(shlex.quote(r) for r in extra_requirements(extra))


def extra_requirements(extra: str) -> list[str]:
    """The requirements ``extra`` adds (``starlette>=0.37``, ...), markers dropped."""
    try:
        requires = importlib.metadata.requires("streamkit") or []
    except importlib.metadata.PackageNotFoundError:
        requires = []
    wanted = re.compile(r"""extra\s*==\s*["']""" + re.escape(extra) + r"""["']""")
    found = [r.split(";", 1)[0].strip() for r in requires
             if ";" in r and wanted.search(r.split(";", 1)[1])]
    return found or _FALLBACK.get(extra, [])


def missing_extra(extra: str, what: str) -> str:
    """``what needs the web extra: pip install -e '.[web]'``."""
    return f"{what} needs the {extra} extra: {install_command(extra)}"
