"""The hint for a missing extra: ``pip install -e '.[web]'`` from a checkout, the
extra's own requirements otherwise (PyPI's ``streamkit`` is another project)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamkit.cli.extras import checkout_root, extra_requirements, install_command

REPO = Path(__file__).resolve().parents[2]
#: a python where starlette cannot be imported (None in sys.modules: ImportError)
NO_STARLETTE = ("import sys; sys.modules['starlette'] = None; "
                "from streamkit.cli import main; main()")

APP = '''
import streamkit
app = streamkit.App("hint-app", broker="memory://hint", store="memory://")
topic = app.topic("t")

@app.agent(topic)
async def read(stream):
    async for _ in stream:
        pass
'''


def test_from_this_checkout_the_hint_installs_the_checkout():
    assert checkout_root() == REPO
    assert install_command("web", cwd=REPO) == "pip install -e '.[web]'"
    assert install_command("web", cwd=REPO / "examples") == "pip install -e '..[web]'"
    assert install_command("web", cwd=Path("/")) == f"pip install -e '{REPO}[web]'"


def test_the_extras_requirements_come_from_the_metadata():
    web = extra_requirements("web")
    assert [r.split(">")[0] for r in web] == ["starlette", "uvicorn", "prometheus-client"]
    assert "streamkit" not in " ".join(web)


def test_an_installed_copy_names_the_packages_not_pypis_streamkit(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(REPO / "streamkit", site / "streamkit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [sys.executable, "-c", ("from streamkit.cli.extras import install_command; "
         "import streamkit; print(streamkit.__file__); print(install_command('web'))")],
        env=dict(os.environ, PYTHONPATH=str(site)), cwd=tmp_path, capture_output=True,
        text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    where, hint = done.stdout.splitlines()
    assert where.startswith(str(site))
    assert hint.startswith("pip install 'starlette")
    assert "uvicorn" in hint and "prometheus-client" in hint
    assert "streamkit" not in hint and "-e" not in hint


@pytest.mark.slow
def test_a_worker_without_the_web_extra_says_how_to_install_it(tmp_path):
    (tmp_path / "hint_app.py").write_text(APP)
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1",
               STREAMKIT_DATADIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", NO_STARLETTE, "worker",
                             str(tmp_path / "hint_app.py"), "--web-port", "0"],
                            env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        assert proc.stderr is not None
        seen = ""
        while time.monotonic() < deadline and "web server not available" not in seen:
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    assert ("web server not available: it needs the web extra: pip install -e '.[web]'"
            in seen), seen + rest
    assert proc.returncode == 0, rest


def test_registry_serve_without_the_web_extra_is_one_line(tmp_path):
    pytest.importorskip("fastavro")
    done = subprocess.run([sys.executable, "-c", NO_STARLETTE, "registry", "serve",
                           "--port", "0", "--broker", f"log://{tmp_path}/log"],
                          env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == ("Error: registry serve needs the web extra: "
                                   "pip install -e '.[web]'")
