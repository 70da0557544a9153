"""The exactly-once torture run (issue 19), shared by tools/eos_torture.py and
tests/e2e/test_exactly_once_log.py.

A real ``python eos_counting.py worker`` process counts events per key into a table
and forwards each event to ``eos-out``; it is SIGKILLed at random moments (some during
start-up, some inside a commit) and restarted, with the same data directory, each
time. A last worker finishes the input and stops gracefully. Then, read as any
read_committed consumer would:

- ``eos-out`` must hold each input event once (``duplicates``, ``missing``);
- the table's changelog (latest value per key) and the last worker's own table must
  equal the true counts (``count_errors``: the sum of the differences, over keys).
"""
from __future__ import annotations

import collections
import glob
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import streamkit
from streamkit.types import Message, TopicPartition

APP = Path(__file__).parent / "apps" / "eos_counting.py"
ROOT = Path(__file__).resolve().parents[2]
APP_ID = "eoscount"
INPUT, OUTPUT = "eos-in", "eos-out"
CHANGELOG = f"{APP_ID}-counts-changelog"
KEYS = 13
#: share of the kills aimed at start-up (before the worker logs "ready")
STARTUP_SHARE = 0.25


@dataclass
class TortureResult:
    """The figures of one run."""

    guarantee: str
    kills: int = 0
    #: kills before the worker was ready (importing, recovering, joining, restoring)
    startup_kills: int = 0
    #: kills that left a transaction prepared (``prepare_commit``/``prepare_abort``):
    #: inside the two phases of a commit
    commit_kills: int = 0
    #: kills that left a transaction open (records written, not committed)
    open_kills: int = 0
    events: int = 0
    outputs: int = 0
    duplicates: int = 0
    missing: int = 0
    #: sum over keys of |count - true count|, changelog read read_committed
    count_errors: int = 0
    #: the same for the last worker's own table (its REPORT line)
    report_errors: int = 0
    #: events by how many times the output holds them
    copies: dict[int, int] = field(default_factory=dict)
    wall: float = 0.0
    last_exit: int | None = None
    #: seconds a worker takes to be ready, as measured
    startup_estimate: float = 1.0

    @property
    def exact(self) -> bool:
        """Each event out once, counts exact, the last worker stopped cleanly."""
        return (self.duplicates == 0 and self.missing == 0 and self.count_errors == 0
                and self.report_errors == 0 and self.last_exit == 0)

    def summary(self) -> str:
        return (f"guarantee={self.guarantee} kills={self.kills} (start-up "
                f"{self.startup_kills}, inside a commit {self.commit_kills}, with a "
                f"transaction open {self.open_kills}) events={self.events} "
                f"outputs={self.outputs} duplicates={self.duplicates} "
                f"missing={self.missing} count_errors={self.count_errors} "
                f"report_errors={self.report_errors} last_exit={self.last_exit} "
                f"wall={self.wall:.1f}s")


class Worker:
    """A worker subprocess of the torture app, its output in a log file."""

    def __init__(self, datadir: Path, env: dict[str, str], name: str,
                 broker: str | None = None) -> None:
        """A worker with its data in ``datadir``, on ``broker`` (a URL; by default
        the log in ``datadir/log``)."""
        self.log_path = datadir / f"{name}.log"
        environment = dict(os.environ, STREAMKIT_DATADIR=str(datadir),
                           STREAMKIT_BROKER=broker or log_of(datadir),
                           PYTHONUNBUFFERED="1")
        environment.update(env)
        # the streamkit of this checkout, wherever the tool is run from
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, str(APP), "worker"],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         env=environment, cwd=str(datadir))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ready(self) -> bool:
        return " ready: " in self.log()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def last_report(self) -> dict[str, int] | None:
        reports = re.findall(r"^REPORT (.*)$", self.log(), re.M)
        return json.loads(reports[-1]) if reports else None


def log_of(datadir: Path) -> str:
    """The URL of the run's log: ``datadir/log``."""
    return f"log://{datadir}/log"


def key_of(i: int) -> str:
    return f"k{i % KEYS}"


class Feed:
    """Sends events 0, 1, ... (key ``k<i % 13>``, value i; not in a transaction) at a
    steady rate, so that every life of the worker has work."""

    def __init__(self, url: str, events: int, rate: float) -> None:
        with streamkit.Admin(broker=url) as admin:
            if INPUT not in admin.list_topics():
                admin.create_topic(INPUT, partitions=4)
        self.producer = streamkit.Producer(broker=url, linger_ms=5, batch_size=500)
        self.events = events
        self.rate = rate
        self.sent = 0
        self.started = time.monotonic()

    def send_due(self, everything: bool = False) -> None:
        """Send the events due by now (or all that are left)."""
        due = self.events if everything else min(
            self.events, int((time.monotonic() - self.started) * self.rate))
        for i in range(self.sent, due):
            self.producer.send(INPUT, key=key_of(i).encode(), value=str(i).encode())
        if due > self.sent:
            self.producer.flush()
            self.sent = due

    def close(self) -> None:
        self.producer.close()


def read_committed(url: str, topic: str) -> list[Message]:
    """Every record of ``topic`` a read_committed reader of ``url`` sees, all
    partitions."""
    with streamkit.Admin(broker=url) as admin:
        if topic not in admin.list_topics():
            return []
        info = admin.describe_topic(topic)
        broker = admin._broker
        out: list[Message] = []
        for p in range(info.partitions):
            offset = info.start_offsets[p]
            while batch := broker.fetch(TopicPartition(topic, p), offset, 10_000,
                                        isolation_level="read_committed"):
                out.extend(batch)
                offset = batch[-1].offset + 1
        return out


def committed(url: str) -> int:
    """How many input events the app's group committed."""
    with streamkit.Admin(broker=url) as admin:
        return sum(o.committed or 0 for o in admin.group_offsets(APP_ID)
                   if o.topic == INPUT)


def committed_all(url: str, events: int) -> bool:
    """Whether the app's group committed every input offset."""
    return committed(url) >= events


def txn_states(datadir: Path) -> dict[str, tuple[int, str]]:
    """Per transactional id of the log (a worker has one): its epoch and state
    (``open``: ongoing with records written)."""
    out = {}
    for path in glob.glob(str(datadir / "log" / "__transactions" / "*" / "state.json")):
        with open(path, "rb") as f:
            state = json.loads(f.read())
        kind = state["state"]
        out[state["transactional_id"]] = (
            state["epoch"], "open" if kind == "ongoing" and state["partitions"] else kind)
    return out


def table_from_changelog(url: str) -> dict[str, int]:
    latest: dict[str, int] = {}
    for m in read_committed(url, CHANGELOG):
        if m.key[:1] == b"\x00":
            continue
        key = json.loads(m.key)
        if m.value is None:
            latest.pop(key, None)
        else:
            latest[key] = json.loads(m.value)
    return latest


def errors(counts: dict[str, int], truth: dict[str, int]) -> int:
    return sum(abs(counts.get(k, 0) - truth.get(k, 0)) for k in set(counts) | set(truth))


def run(datadir: Path, *, kills: int, events: int, seed: int, guarantee: str,
        commit_interval: float = 0.05, life: float = 1.5, event_work: float = 0.0002,
        event_sleep: float = 0.0, marker_sleep: float = 0.004, timeout: float = 600.0,
        say: Callable[[str], None] | None = None, broker: str | None = None
        ) -> TortureResult:
    """The whole run in ``datadir`` (fresh); see the module docstring. Events come at
    a steady rate meant to last until the last kill; a life lasts a random time
    (below the start-up time for a quarter of them, up to start-up + ``life``
    seconds for the others). ``broker``: a URL instead of the log in ``datadir``
    (then the kills inside a commit or with a transaction open are not told apart)."""
    rng = random.Random(seed)
    result = TortureResult(guarantee)
    started = time.monotonic()
    env = {"EOS_GUARANTEE": guarantee, "EOS_COMMIT_INTERVAL": str(commit_interval),
           "EOS_EVENT_WORK": str(event_work), "EOS_EVENT_SLEEP": str(event_sleep),
           "EOS_MARKER_SLEEP": str(marker_sleep)}
    startup = 1.0                           # seconds to "ready", learnt as we go
    url = broker or log_of(datadir)
    feed = Feed(url, events, events / (kills * (startup + life * 0.6) + 1.0))
    try:
        for n in range(kills):
            result.kills += 1
            _one_life(datadir, url, env, n, rng, feed, result, startup, life, say)
            startup = result.startup_estimate
        feed.send_due(everything=True)
    finally:
        feed.close()
    last = Worker(datadir, env, "last", broker=url)
    deadline = time.monotonic() + timeout
    while not committed_all(url, events):
        if last.proc.poll() is not None or time.monotonic() > deadline:
            last.kill()
            raise RuntimeError(f"the last worker did not finish:\n{last.log()[-3000:]}")
        time.sleep(0.1)
    # its table once restored (on Kafka the killed lives may have committed every
    # event before it even joined), taken before it stops (a timer may still print
    # one once its partitions were revoked, of an empty table)
    deadline = time.monotonic() + 30
    while (not last.ready() or sum((last.last_report() or {}).values()) != events) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.7)                         # a REPORT after the last commit
    report = last.last_report() or {}
    result.last_exit = last.terminate()
    result.wall = time.monotonic() - started
    check(url, result, events, report)
    return result


def _one_life(datadir: Path, url: str, env: dict[str, str], n: int, rng: random.Random,
              feed: Feed, result: TortureResult, startup: float, life: float,
              say: Callable[[str], None] | None) -> None:
    """Start a worker, feed it for a random time, SIGKILL it; count where it was."""
    before = txn_states(datadir)
    worker = Worker(datadir, env, f"life-{n:03d}", broker=url)
    begun = time.monotonic()
    at_startup = rng.random() < STARTUP_SHARE
    delay = rng.uniform(0.05, startup) if at_startup else startup + rng.uniform(0, life)
    ready_after = None
    while (now := time.monotonic()) - begun < delay:
        feed.send_due()
        if ready_after is None and worker.ready():
            ready_after = now - begun
        if worker.proc.poll() is not None:
            raise RuntimeError(f"worker life {n} exited by itself "
                               f"({worker.proc.returncode}):\n{worker.log()[-3000:]}")
        time.sleep(0.005)
    worker.kill()
    if ready_after is not None:
        result.startup_estimate = 0.7 * startup + 0.3 * ready_after
    elif not at_startup:
        result.startup_estimate = delay + 0.3      # slower than thought (a loaded machine)
    ready = worker.ready()
    result.startup_kills += not ready
    # (a state this life did not touch, one it never took the id for, is not its)
    states = [state for tid, (epoch, state) in txn_states(datadir).items()
              if before.get(tid, (-1, ""))[0] != epoch]
    result.commit_kills += any(s.startswith("prepare") for s in states)
    result.open_kills += "open" in states
    if say is not None:
        say(f"kill {n + 1} after {delay:.2f}s ({'ready' if ready else 'starting'}; "
            f"transaction {', '.join(states) or 'none'}; {feed.sent} events sent)")


def check(url: str, result: TortureResult, events: int,
          report: dict[str, int]) -> None:
    """Fill in the figures of ``result`` from the broker at ``url`` (read_committed)."""
    truth = collections.Counter(key_of(i) for i in range(events))
    outputs = [json.loads(m.value)["id"] for m in read_committed(url, OUTPUT)]
    seen = collections.Counter(outputs)
    result.events = events
    result.outputs = len(outputs)
    result.duplicates = sum(n - 1 for n in seen.values() if n > 1)
    result.missing = sum(1 for i in range(events) if i not in seen)
    result.copies = dict(sorted(collections.Counter(seen.values()).items()))
    result.count_errors = errors(table_from_changelog(url), truth)
    result.report_errors = errors(report, truth)


#: the zombie run's app settings: commits 1 s apart (a pause lands between two), a
#: session that expires 2 s into a pause
ZOMBIE_ENV = {"EOS_GUARANTEE": "exactly_once", "EOS_COMMIT_INTERVAL": "1.0",
              "EOS_SESSION_TIMEOUT": "2.0", "EOS_EVENT_WORK": "0.0002",
              "EOS_SAY_COMMITS": "1"}


@dataclass
class ZombieRun:
    """What ``zombie_run`` saw."""

    result: TortureResult
    #: A's log, and how it ended: its exit code if it stopped by itself after SIGCONT
    #: (its commit refused), else that of the SIGTERM the run sent it at the end
    a_log: str
    a_exit: int
    a_stopped_by_itself: bool


def zombie_run(datadir: Path, url: str, stop: Callable[[Worker, Feed], None],
               events: int = 1500) -> ZombieRun:
    """Worker A (``datadir/a``) counts and forwards; ``stop`` SIGSTOPs it while it has
    work in flight. Worker B (``datadir/b``: another transactional id, same group)
    starts, takes A's partitions once A's session expired, and commits 200 more
    events. A gets SIGCONT: it must commit nothing of what it did as a zombie (its
    commit refused, or its partitions lost and its transaction aborted); the rest of
    the input goes to both, and the output is checked as a read_committed reader sees
    it."""
    feed, a = _first_worker(datadir, url, events)
    b = None
    try:
        stop(a, feed)
        by_a = committed(url)
        b = Worker(datadir / "b", ZOMBIE_ENV, "b", broker=url)
        _wait(lambda: committed(url) >= by_a + 200, b, feed)
        a.proc.send_signal(signal.SIGCONT)
        feed.send_due(everything=True)
        _wait(lambda: committed_all(url, events), b, feed, timeout=90)
        a_stopped = a.proc.poll() is not None
        a_exit = a.proc.returncode if a_stopped else a.terminate()
        # B alone now: a REPORT of the whole table (every partition restored)
        report = _whole_report(b, feed, events)
        assert b.terminate() == 0, b.log()
    finally:
        _end(feed, a, b)
    result = TortureResult("exactly_once")
    check(url, result, events, report)
    return ZombieRun(result, a.log(), a_exit, a_stopped)


def _first_worker(datadir: Path, url: str, events: int) -> tuple[Feed, Worker]:
    """Worker A in ``datadir/a`` (B gets ``datadir/b``), fed at 250 events a second,
    once it committed 100 events."""
    (datadir / "a").mkdir()
    (datadir / "b").mkdir()
    feed = Feed(url, events, rate=250.0)
    a = Worker(datadir / "a", ZOMBIE_ENV, "a", broker=url)
    try:
        _wait(lambda: committed(url) >= 100, a, feed)
    except BaseException:
        _end(feed, a, None)
        raise
    return feed, a


def _end(feed: Feed, a: Worker, b: Worker | None) -> None:
    feed.close()
    for worker in (a, b):
        if worker is not None:
            if worker.proc.poll() is None:
                os.kill(worker.proc.pid, signal.SIGCONT)     # (a stopped one)
            worker.kill()


def _whole_report(b: Worker, feed: Feed, events: int) -> dict[str, int]:
    """B's REPORT once it counts every event (B alone: it restored every partition),
    taken before it stops (a timer may still print one once its partitions were
    revoked, of an empty table)."""
    _wait(lambda: sum((b.last_report() or {}).values()) == events, b, feed)
    return b.last_report() or {}


def _wait(condition: Callable[[], bool], worker: Worker, feed: Feed,
          timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        feed.send_due()
        assert worker.proc.poll() is None, worker.log()
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.05)


def join_run(datadir: Path, url: str, events: int = 1500) -> TortureResult:
    """Worker A counts and forwards; worker B joins its group while it works, so A
    gives partitions up in a rebalance (committing what it did with them), and both
    go on to the end of the input; then A stops, B takes everything, B stops. Both
    must stop cleanly, and the output hold each event once."""
    feed, a = _first_worker(datadir, url, events)
    b = None
    try:
        b = Worker(datadir / "b", ZOMBIE_ENV, "b", broker=url)
        _wait(lambda: " partitions assigned" in b.log(), b, feed)
        feed.send_due(everything=True)
        _wait(lambda: committed_all(url, events), a, feed, timeout=90)
        assert b.proc.poll() is None, b.log()
        assert a.terminate() == 0, a.log()
        report = _whole_report(b, feed, events)
        assert b.terminate() == 0, b.log()
    finally:
        _end(feed, a, b)
    result = TortureResult("exactly_once")
    check(url, result, events, report)
    return result
