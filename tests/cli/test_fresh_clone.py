"""The README's two set-up commands work on a fresh clone of the committed tree.

A clone of HEAD (so only committed files count) is installed with ``pip install -e``
into a fresh virtualenv that sees the packages of the interpreter running the tests, so
no dependency is downloaded (the build backend neither, when this interpreter has
setuptools and wheel). Then, in the clone: ``streamkit demo`` and the README's test
command on the CLI tests.

"This interpreter's packages" are its ``sys.path`` folders, written into a ``.pth`` file
of the new venv, not ``--system-site-packages``: when the tests run inside a venv, that
option shows the base interpreter's packages, not the venv's (where ``pip install -e
'.[test]'`` put the dependencies), and the clone could not import them.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def build_flags() -> list[str]:
    """Build with this interpreter's setuptools when it can make wheels (no download);
    else let pip fetch the build backend from PyPI as the README's command does."""
    try:
        import setuptools  # noqa: F401
        import wheel  # noqa: F401
    except ImportError:
        return []
    return ["--no-build-isolation"]


def package_folders(known: list[str]) -> list[str]:
    """The folders this interpreter imports installed packages from that a python
    with ``sys.path`` ``known`` lacks (the standard library it has), without folders
    named by ``$PYTHONPATH`` and without any folder holding a ``streamkit`` package
    (this checkout: it would shadow the clone)."""
    seen = {os.path.realpath(p) for p in known if p}
    seen |= {os.path.realpath(p) for p in os.environ.get("PYTHONPATH", "").split(
        os.pathsep) if p}
    folders = []
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue            # '' (the current directory), zip files, path hooks
        real = os.path.realpath(entry)
        if real in seen or os.path.isdir(os.path.join(real, "streamkit")):
            continue
        seen.add(real)
        folders.append(real)
    return folders


def make_venv(env_dir: Path) -> Path:
    """A venv whose python imports what this interpreter imports (``package_folders``,
    after the venv's own site-packages, so what is installed into it comes first)."""
    venv.create(env_dir, system_site_packages=False, with_pip=False)
    python = env_dir / "bin" / "python"
    found = subprocess.run(
        [str(python), "-I", "-c", ("import json, sys, sysconfig; print(json.dumps("
                                   "[sysconfig.get_path('purelib'), sys.path]))")],
        check=True, capture_output=True, text=True).stdout
    site_dir, known = json.loads(found)
    Path(site_dir, "_outer_packages.pth").write_text("\n".join(package_folders(known))
                                                     + "\n")
    return python


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"^(pip install [^\n#]*?)\s*(?:#.*)?$", text, re.M)


def test_readme_shows_the_two_setup_commands():
    commands = readme_commands()
    assert "pip install -e . && streamkit demo" in commands
    assert "pip install -e '.[test]' && python -m pytest -q" in commands
    ci = (REPO / ".ci" / "run").read_text()
    assert "python -m pytest -q" in ci


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_fresh_clone_installs_and_runs_the_demo_and_tests(tmp_path):
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{REPO}", str(clone)],
                   check=True, timeout=60)
    env_dir = tmp_path / "venv"
    python = make_venv(env_dir)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("STREAMKIT_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), cwd=clone, env=env, capture_output=True,
                              text=True, timeout=timeout)

    # the venv has no pip of its own: use this interpreter's pip, aimed at the venv
    installed = run(sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--quiet", *build_flags(), "--no-deps", "-e", ".[test]")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    where = run(str(python), "-c", "import streamkit; print(streamkit.__file__)")
    assert where.stdout.strip().startswith(str(clone)), where.stdout + where.stderr
    demo = run(str(env_dir / "bin" / "streamkit"), "demo", timeout=90)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "(matches the 300 rides produced)" in demo.stdout
    tests = run(str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "tests/cli/test_cli.py", timeout=180)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert re.search(r"\d+ passed", tests.stdout)
