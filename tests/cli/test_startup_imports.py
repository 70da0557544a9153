"""Start-up imports only what the app uses: ``import streamkit``, loading a plain app
through the command line, and a worker up to its first event leave the web server,
Avro (fastavro), croniter and the Kafka client unimported. The web server still starts
by default, once the first events are with the agents (docs/benchmarks.md, "Start-up").
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

#: modules a plain app (no Avro, no cron timer, log://) has no use for at start-up
OPTIONAL = ["streamkit.web.server", "starlette", "uvicorn", "fastavro", "streamkit.avro",
            "croniter", "confluent_kafka"]

PLAIN_APP = textwrap.dedent('''
    import json
    import sys
    import streamkit

    class Ride(streamkit.Record):
        vendor: int
        amount: float

    app = streamkit.App("plain")
    rides = app.topic("rides", value_type=Ride)
    per_vendor = app.Table("per_vendor", default=int)
    seen = False

    @app.agent(rides)
    async def count(stream):
        global seen
        async for ride in stream:
            if not seen:
                seen = True
                # what was imported when the agent saw its first event
                with open("first-event.json", "w") as out:
                    json.dump(sorted(m for m in {optional!r} if m in sys.modules), out)
            per_vendor[ride.vendor] += 1

    @app.timer(interval=60.0)
    async def report():
        print(dict(per_vendor.items()))

    if __name__ == "__main__":
        app.main()
''').format(optional=OPTIONAL)

#: run in a subprocess: print the optional modules imported by then, as JSON
REPORT = (f"import json, sys; print(json.dumps(sorted(m for m in {OPTIONAL!r} "
          "if m in sys.modules)))")


def env_for(datadir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, STREAMKIT_DATADIR=str(datadir),
               STREAMKIT_BROKER=f"log://{datadir}/log", PYTHONUNBUFFERED="1", **extra)
    env.pop("STREAMKIT_DEBUG", None)
    return env


def imported_after(code: str, datadir: Path) -> list[str]:
    """The optional modules imported once ``code`` ran in a fresh interpreter."""
    script = f"{code}\n{REPORT}"
    done = subprocess.run([sys.executable, "-c", script], env=env_for(datadir),
                          cwd=datadir, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_import_streamkit_imports_no_optional_part(tmp_path: Path) -> None:
    assert imported_after("import streamkit", tmp_path) == []


def test_loading_a_plain_app_imports_no_optional_part(tmp_path: Path) -> None:
    app_file = tmp_path / "plain_app.py"
    app_file.write_text(PLAIN_APP)
    # ``python app.py agents``: the app's module, then its command line
    as_script = textwrap.dedent(f'''
        import runpy, sys
        sys.argv = [{str(app_file)!r}, "agents"]
        try:
            runpy.run_path({str(app_file)!r}, run_name="__main__")
        except SystemExit as exc:
            assert not exc.code, exc.code
    ''')
    assert imported_after(as_script, tmp_path) == []
    # ``streamkit agents plain_app.py``: the command line, then the app's module
    with_cli = textwrap.dedent(f'''
        import sys
        from streamkit.cli import main
        sys.argv = ["streamkit", "agents", {str(app_file)!r}]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, exc.code
    ''')
    assert imported_after(with_cli, tmp_path) == []


def test_an_avro_app_that_does_not_import_streamkit_avro_is_told_to(tmp_path: Path
                                                                      ) -> None:
    # the command line no longer imports streamkit.avro (and with it the avro codec)
    # for the app: the app imports it, and the error says so
    app_file = tmp_path / "avro_app.py"
    app_file.write_text(textwrap.dedent('''
        import streamkit

        class Ride(streamkit.Record, serializer="avro"):
            vendor: int

        app = streamkit.App("avroapp")
        rides = app.topic("rides", value_type=Ride)
    '''))
    done = subprocess.run([sys.executable, "-c", "from streamkit.cli import main; main()",
                           "agents", str(app_file)], env=env_for(tmp_path), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "unknown serializer 'avro'" in done.stderr
    assert "import streamkit.avro to register it" in done.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def produce_rides(datadir: Path, count: int) -> None:
    import streamkit
    producer = streamkit.Producer(broker=f"log://{datadir}/log")
    try:
        for i in range(count):
            producer.send("rides", key=b"%d" % (i % 3),
                          value=json.dumps({"vendor": i % 3, "amount": 1.5}).encode())
        producer.flush()
    finally:
        producer.close()


@pytest.mark.slow
def test_a_worker_sees_its_first_event_before_the_web_server_imports(tmp_path: Path
                                                                     ) -> None:
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    pytest.importorskip("prometheus_client")
    app_file = tmp_path / "plain_app.py"
    app_file.write_text(PLAIN_APP)
    produce_rides(tmp_path, 50)
    port = free_port()
    worker = subprocess.Popen([sys.executable, str(app_file), "worker"], cwd=tmp_path,
                              env=env_for(tmp_path, STREAMKIT_WEB_PORT=str(port)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        marker = tmp_path / "first-event.json"
        deadline = time.monotonic() + 30
        while not (marker.exists() and marker.read_text()):
            assert worker.poll() is None, worker.communicate()[1]
            assert time.monotonic() < deadline, "no first event within 30 s"
            time.sleep(0.02)
        assert json.loads(marker.read_text()) == []
        # and the web server starts by default all the same
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz",
                                            timeout=2) as response:
                    assert json.load(response)["status"] == "ok"
                    break
            except OSError:
                assert worker.poll() is None, worker.communicate()[1]
                assert time.monotonic() < deadline, "the web server did not start"
                time.sleep(0.05)
    finally:
        worker.terminate()
        worker.wait(30)
