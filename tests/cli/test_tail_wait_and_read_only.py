"""``streamkit tail --wait`` waits for a topic (and a log) that does not exist yet;
``topics``, ``groups`` and ``tail`` only read: on a read-only data directory they work,
and on a writable one they create and change no file."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CODE = "from streamkit.cli import main; main()"
STREAMKIT = [sys.executable, "-c", CODE]


def env_for(datadir: Path) -> dict[str, str]:
    env = dict(os.environ, STREAMKIT_DATADIR=str(datadir / "stores"), PYTHONUNBUFFERED="1",
               PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    env.pop("STREAMKIT_BROKER", None)
    env.pop("STREAMKIT_DEBUG", None)
    return env


def streamkit(datadir: Path, *args: str, prefix: tuple[str, ...] = ()
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, *STREAMKIT, *args], env=env_for(datadir), cwd=datadir,
                          capture_output=True, text=True, timeout=60)


def test_tail_wait_waits_for_the_log_and_the_topic_then_tails_it(tmp_path):
    proc = subprocess.Popen([*STREAMKIT, "tail", "later", "--wait", "-n", "2",
                             "--format", "raw"], env=env_for(tmp_path), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().strip() == "waiting for topic 'later' on log://..."
        time.sleep(0.5)
        assert not (tmp_path / "stores").exists()     # waiting creates nothing
        # the first send creates the topic with its message: tail still shows it
        assert streamkit(tmp_path, "send", "later", "first").returncode == 0
        assert streamkit(tmp_path, "send", "later", "second").returncode == 0
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.splitlines() == ["first", "second"]


def test_tail_wait_gives_up_after_the_timeout(tmp_path):
    assert streamkit(tmp_path, "send", "other", "x").returncode == 0
    done = streamkit(tmp_path, "tail", "later", "--wait", "--timeout", "0.5")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "waiting for topic 'later' on log://...",
        "Error: no topic 'later' on log:// after waiting 0.5 s"]


def test_tail_without_wait_on_a_missing_log_says_so_and_creates_nothing(tmp_path):
    done = streamkit(tmp_path, "tail", "later")
    assert done.returncode == 1 and "no embedded log at" in done.stderr
    assert not (tmp_path / "stores").exists()


def _filled(tmp_path: Path) -> Path:
    assert streamkit(tmp_path, "send", "rides", "one", "--key", "a").returncode == 0
    assert streamkit(tmp_path, "send", "rides", "two", "--key", "b").returncode == 0
    # a group with a committed offset, for `groups` to show
    assert streamkit(tmp_path, "tail", "rides", "--from-beginning", "--group", "g",
                     "-n", "1").returncode == 0
    return tmp_path / "stores"


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(root.rglob("*"))}


READS = [
    ("topics",),
    ("topics", "--broker", "log://"),
    ("groups",),
    ("tail", "rides", "--from-beginning", "-n", "2", "--format", "raw"),
    ("tail", "rides", "--timeout", "0.3"),
    ("tail", "rides", "--wait", "--from-beginning", "-n", "2", "--format", "raw"),
]


def _check_reads(tmp_path: Path, prefix: tuple[str, ...] = ()) -> None:
    for args in READS:
        done = streamkit(tmp_path, *args, prefix=prefix)
        assert done.returncode == 0, (args, done.stderr)
        if args[0] == "topics":
            assert "│ rides " in done.stdout
        elif args[0] == "groups":
            assert "│ g " in done.stdout
        elif "-n" in args:
            assert done.stdout.splitlines() == ["one", "two"], (args, done.stdout)


def test_reading_commands_change_no_file_of_the_data_directory(tmp_path):
    root = _filled(tmp_path)
    before = _snapshot(root)
    _check_reads(tmp_path)
    assert _snapshot(root) == before


def test_reading_commands_work_on_a_read_only_mount(tmp_path):
    """A read-only bind mount refuses writes to root too (chmod does not)."""
    root = _filled(tmp_path)
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount the data directory read-only")
    for args in READS:
        script = (f'mount --bind -o ro "{root}" "{root}" && exec "$0" -c "$1" '
                  + " ".join(f"'{a}'" for a in args))
        done = subprocess.run(["unshare", "-m", "sh", "-c", script, sys.executable, CODE],
                              env=env_for(tmp_path), cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
        if "mount" in done.stderr and any(w in done.stderr for w in (
                "ermission", "denied", "not permitted")):
            pytest.skip(f"cannot mount read-only here: {done.stderr.strip()}")
        assert done.returncode == 0, (args, done.stderr)
        if "-n" in args:
            assert done.stdout.splitlines() == ["one", "two"]
    # and a write there fails: the mount was read-only
    script = f'mount --bind -o ro "{root}" "{root}" && exec "$0" -c "$1" send rides three'
    done = subprocess.run(["unshare", "-m", "sh", "-c", script, sys.executable, CODE],
                          env=env_for(tmp_path), cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "Read-only file system" in done.stderr


def test_reading_commands_work_for_a_user_who_may_not_write():
    """chmod -R a-w, read by an unprivileged user (root ignores the modes)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv(1) to run as nobody")
    # (pytest's tmp_path lies in folders only root may enter)
    folder = Path(tempfile.mkdtemp(prefix="streamkit-ro-"))
    try:
        os.chmod(folder, 0o755)
        root = _filled(folder)
        prefix = (setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
        probe = subprocess.run([*prefix, sys.executable, "-c", "import streamkit"],
                               env=env_for(folder), cwd=folder, capture_output=True,
                               text=True)
        if probe.returncode != 0:
            pytest.skip("this interpreter or checkout is not readable by nobody: "
                        + probe.stderr.strip()[-200:])
        subprocess.run(["chmod", "-R", "a-w,a+rX", str(root)], check=True)
        before = _snapshot(root)
        _check_reads(folder, prefix)
        assert _snapshot(root) == before
        # and nobody could not have written there
        done = streamkit(folder, "send", "rides", "three", prefix=prefix)
        assert done.returncode == 1 and "Permission denied" in done.stderr
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(folder)], check=True)
        shutil.rmtree(folder)
