"""A log on a read-only disk (a snapshot, a copy, a mount made read-only by a full disk)
can still be checked and read: nothing in a read needs to write, not even after a
restart of the machine, when a writable log would be recovered first."""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from streamkit.log.storage import FilePartitionStore
from streamkit.transport import connect
from streamkit.types import OutgoingRecord

REPO = Path(__file__).parents[2]


def _read_only(root: Path, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a process that sees ``root`` mounted read-only."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a folder read-only")
    script = textwrap.dedent(code)
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", f'mount --bind -o ro "{root}" "{root}" && '
         f'PYTHONPATH="{REPO}" "{sys.executable}" -c "$0"', script],
        check=False, capture_output=True, text=True, timeout=60)
    if "mount" in done.stderr and ("ermission" in done.stderr or "denied" in done.stderr
                                   or "not permitted" in done.stderr):
        pytest.skip(f"cannot mount a folder read-only here: {done.stderr.strip()}")
    return done


@pytest.mark.parametrize("restarted", [False, True], ids=["same boot", "after restart"])
def test_a_read_only_log_can_be_checked_and_read(tmp_path, restarted):
    root = tmp_path / "log"
    broker = connect(f"log://{root}")
    broker.create_topic("t", partitions=1)
    broker.produce("t", [OutgoingRecord(None, b"v%d" % i) for i in range(10)], acks="all")
    broker.close()
    if restarted:
        store = FilePartitionStore(root / "t" / "0")
        point = store.read_recovery()
        assert point is not None
        store.write_recovery(point._replace(boot=b"an earlier boot."))
        store.close()
    done = _read_only(root, f"""
        from click.testing import CliRunner
        from streamkit.cli import cli
        from streamkit.transport import connect
        from streamkit.types import TopicPartition
        got = connect("log://{root}").fetch(TopicPartition("t", 0), 0, 100)
        print("read", [m.value.decode() for m in got])
        result = CliRunner().invoke(cli, ["log", "check", "--broker", "log://{root}"])
        print("check", result.exit_code, result.output)
    """)
    assert done.returncode == 0, done.stderr
    assert "read " + str([f"v{i}" for i in range(10)]) in done.stdout
    assert "check 0 checked 1 partitions" in done.stdout
