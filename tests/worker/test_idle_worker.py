"""An idle worker sleeps until records come (decision 111): it does not poll its log, and
a record sent from another process reaches its agent at once."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import streamkit

REPO = Path(__file__).resolve().parents[2]

APP = textwrap.dedent('''
    import time
    import streamkit

    app = streamkit.App("idle", web_enabled=False)
    pings = app.topic("pings", value_serializer="raw")

    @app.agent(pings)
    async def receive(stream):
        async for value in stream:
            with open(value.decode(), "w") as out:
                out.write(repr(time.monotonic()))

    if __name__ == "__main__":
        app.main()
''')


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(path: Path, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text()):
        assert proc.poll() is None, f"the worker exited {proc.returncode}"
        assert time.monotonic() < deadline, f"{path.name} did not appear"
        time.sleep(0.01)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_idle_worker_uses_almost_no_cpu_and_wakes_on_a_send(tmp_path: Path) -> None:
    url = f"log://{tmp_path}/log"
    admin = streamkit.Admin(broker=url)
    admin.create_topic("pings", partitions=4)
    admin.close()
    (tmp_path / "app.py").write_text(APP)
    env = dict(os.environ, STREAMKIT_BROKER=url, STREAMKIT_DATADIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get("PYTHONPATH")])))
    log = open(tmp_path / "worker.log", "wb")
    proc = subprocess.Popen([sys.executable, "app.py", "worker"], cwd=tmp_path, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    producer = streamkit.Producer(broker=url, linger_ms=0)
    try:
        first = tmp_path / "first"
        producer.send("pings", value=str(first).encode())
        wait_for(first, proc, 30)                 # started, joined, read its first record
        time.sleep(1.5)                           # past its first commit
        before, start = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(3.0)
        idle = 100 * (cpu_seconds(proc.pid) - before) / (time.monotonic() - start)
        # a worker polling with 1-20 ms sleeps used 3-4% of a core here; this one wakes
        # for its heartbeat, its commit interval and nothing else (about 0.4%)
        assert idle < 2.0, f"idle worker used {idle:.1f}% of a core"
        later = tmp_path / "later"
        sent = time.monotonic()
        producer.send("pings", value=str(later).encode())
        wait_for(later, proc, 10)
        assert float(later.read_text()) - sent < 0.05
    finally:
        producer.close()
        proc.terminate()
        proc.wait(30)
        log.close()
