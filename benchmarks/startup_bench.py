"""Start-up: worker process start to the agent's first event.

A small app (one agent over a typed Record, one RocksDB table, the web server on as by
default) runs as ``python app.py worker`` over 2,000 events already written to a
4-partition topic of the embedded log. The clock starts just before the subprocess is
spawned; the agent writes ``time.time()`` to a file when it sees its first event. Each
run has a fresh data directory (new stores, a new changelog topic, a new group), as a
first start has.

In the same run, as references: ``python -c pass`` and ``python -c "import streamkit"``
(spawn to exit). The three are interleaved run by run so they see the same machine.
Beside the wall clock, the worker's CPU time up to its first event (user + system, as
``time.process_time()`` in the worker) shows the work done, which other load on the
machine delays but does not add to.

Bytecode: by default the interpreters read and write compiled modules under a
temporary ``PYTHONPYCACHEPREFIX``, warmed by one unmeasured round, as an installed
package has its ``.pyc`` files. ``--source`` keeps the environment as it is (with
``PYTHONDONTWRITEBYTECODE=1`` every streamkit module is compiled at every start).

``--against DIR`` times another checkout (e.g. ``git worktree add --detach /tmp/ab
main``) in the same runs, alternating with this one, for a before/after.

    python benchmarks/startup_bench.py [--runs 9] [--events 2000] [--without-web]
                                       [--source] [--against DIR]
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout

import streamkit  # noqa: E402

APP = textwrap.dedent('''
    import sys
    import time
    import streamkit

    class Ride(streamkit.Record):
        vendor: int
        amount: float

    app = streamkit.App("startup")
    rides = app.topic("rides", value_type=Ride)
    per_vendor = app.Table("per_vendor", default=int)
    seen = False

    @app.agent(rides)
    async def count(stream):
        global seen
        async for ride in stream:
            if not seen:
                seen = True
                with open({marker!r}, "w") as out:
                    out.write(f"{{time.time()!r}} {{time.process_time()!r}}")
            per_vendor[ride.vendor] += 1

    if __name__ == "__main__":
        app.main()
''')


def produce(url: str, events: int) -> None:
    """``events`` small JSON records in a 4-partition topic."""
    admin = streamkit.Admin(broker=url)
    admin.create_topic("rides", partitions=4)
    admin.close()
    producer = streamkit.Producer(broker=url, linger_ms=1000, batch_size=5000)
    codec = streamkit.codecs.get("json")
    for i in range(events):
        producer.send("rides", key=str(i % 7).encode(),
                      value=codec.dumps({"vendor": i % 7, "amount": i * 0.5}))
    producer.flush()
    producer.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Checkout:
    """The interpreter environment that runs one checkout's streamkit."""

    def __init__(self, root: Path, pycache: str | None) -> None:
        self.root = root
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, [str(root), os.environ.get("PYTHONPATH")])))
        for name in ("STREAMKIT_BROKER", "STREAMKIT_DATADIR", "STREAMKIT_DEBUG"):
            self.env.pop(name, None)
        if pycache is not None:
            self.env.pop("PYTHONDONTWRITEBYTECODE", None)
            self.env["PYTHONPYCACHEPREFIX"] = pycache

    def python_c(self, code: str) -> float:
        """Seconds to spawn ``python -c code`` and see it exit."""
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=self.env, check=True)
        return time.perf_counter() - start

    def first_event(self, events: int, web: bool) -> tuple[float, float]:
        """Seconds from spawning a worker to its agent's first event (fresh datadir),
        and the CPU seconds the worker process used by then."""
        with tempfile.TemporaryDirectory() as tmp:
            url = f"log://{tmp}/log"
            produce(url, events)
            marker = Path(tmp) / "first-event"
            app_file = Path(tmp) / "startup_app.py"
            app_file.write_text(APP.format(marker=str(marker)))
            env = dict(self.env, STREAMKIT_BROKER=url, STREAMKIT_DATADIR=tmp,
                       STREAMKIT_WEB_PORT=str(free_port()),
                       STREAMKIT_WEB_ENABLED="1" if web else "0")
            start = time.time()
            proc = subprocess.Popen([sys.executable, str(app_file), "worker"], env=env,
                                    cwd=tmp, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            try:
                while not marker.exists() or not marker.read_text():
                    if proc.poll() is not None:
                        assert proc.stderr is not None
                        raise SystemExit(f"the worker exited {proc.returncode}:\n"
                                         f"{proc.stderr.read().decode()}")
                    time.sleep(0.002)
                seen, cpu = map(float, marker.read_text().split())
                return seen - start, cpu
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def round(self, events: int, web: bool) -> dict[str, float]:
        wall, cpu = self.first_event(events, web)
        return {"python -c pass": self.python_c("pass"),
                "import streamkit": self.python_c("import streamkit"),
                "worker start -> first event": wall,
                "  its CPU time": cpu}


def report(name: str, timings: dict[str, list[float]]) -> None:
    print(f"{name}:")
    for what, values in timings.items():
        print(f"  {what:<28} median {statistics.median(values):.3f} s  "
              f"min {min(values):.3f}  max {max(values):.3f}  "
              f"runs: {', '.join(f'{v:.3f}' for v in values)}")
    first = statistics.median(timings["worker start -> first event"])
    bare = statistics.median(timings["python -c pass"])
    imported = statistics.median(timings["import streamkit"])
    print(f"  first event / python -c pass: {first / bare:.1f}x; "
          f"first event - import streamkit: {first - imported:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--without-web", action="store_true",
                        help="run the worker with web_enabled=False")
    parser.add_argument("--source", action="store_true",
                        help="no bytecode cache of our own: the environment as it is")
    parser.add_argument("--against", type=Path, default=None,
                        help="another checkout, timed in the same runs (alternating)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as pycache:
        prefix = None if args.source else pycache
        checkouts = {"this checkout": Checkout(ROOT, prefix)}
        if args.against is not None:
            checkouts[f"against {args.against}"] = Checkout(args.against.resolve(), prefix)
        web = not args.without_web
        if prefix is not None:
            for checkout in checkouts.values():    # compile once, unmeasured
                checkout.round(args.events, web)
        timings: dict[str, dict[str, list[float]]] = {name: {} for name in checkouts}
        for i in range(args.runs):
            # alternate which checkout goes first, so neither always follows the other
            order = list(checkouts.items())
            for name, checkout in (order if i % 2 == 0 else order[::-1]):
                for what, seconds in checkout.round(args.events, web).items():
                    timings[name].setdefault(what, []).append(seconds)
    print(f"start-up, {args.runs} runs, {args.events} events, web "
          f"{'off' if args.without_web else 'on'}, bytecode "
          f"{'as the environment has it' if args.source else 'cached'}")
    for name, values in timings.items():
        report(name, values)
    if args.against is not None:
        for what in ("worker start -> first event", "  its CPU time"):
            this, other = (statistics.median(t[what]) for t in timings.values())
            print(f"{what.strip()}, this checkout / against: {this / other:.2f}")


if __name__ == "__main__":
    main()
