"""What a running worker reports about itself: agents, partitions and lag, tables, DLQ.

Everything here reads the objects the worker already keeps (Monitor counters, the
consumer's assignment, the broker's end offsets, table stores); nothing is counted per
event for the web server's sake. The only state of its own is :class:`RateHistory`, a
once-a-second sample of each agent's event count, so a freshly opened dashboard can
draw an events/s sparkline at once.
"""
from __future__ import annotations

import json
import os
import time
from collections import deque
from datetime import date, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

import anyio

from streamkit.types import TopicPartition

if TYPE_CHECKING:
    from streamkit.app import App
    from streamkit.tables.table import Table

#: tables whose stores hold at most this many keys are counted exactly for their size;
#: larger ones report the store's own count (RocksDB: an estimate), without a scan
EXACT_SIZE_LIMIT = 5000


class RateHistory:
    """Events/s per agent (and for the whole worker), one sample a second."""

    def __init__(self, app: App, length: int = 60, interval: float = 1.0) -> None:
        self.app = app
        self.interval = interval
        self._last: dict[str, int] = {}
        self._last_total = 0
        self._last_at: float | None = None
        self.rates: dict[str, deque[float]] = {}
        self.total: deque[float] = deque(maxlen=length)
        self._length = length

    def sample(self) -> None:
        """Record the events/s of every agent since the previous sample."""
        now = time.monotonic()
        counts = {name: agent.events_total for name, agent in self.app.agents.items()}
        total = sum(self.app.monitor.events_in.values())
        if self._last_at is not None:
            elapsed = max(now - self._last_at, 1e-6)
            for name, count in counts.items():
                rate = max(0, count - self._last.get(name, 0)) / elapsed
                self.rates.setdefault(name, deque(maxlen=self._length)).append(rate)
            self.total.append(max(0, total - self._last_total) / elapsed)
        self._last, self._last_total, self._last_at = counts, total, now

    def rate(self, agent: str) -> float:
        samples = self.rates.get(agent)
        return samples[-1] if samples else 0.0

    async def run(self) -> None:
        while True:
            self.sample()
            await anyio.sleep(self.interval)


# -- pieces of the status ----------------------------------------------------------------
class Offsets:
    """The offsets the views read, with the broker's answers kept for ``ttl`` seconds.

    On ``kafka://`` every ``broker.offsets()`` is a network round trip made on the
    worker's event loop; a dashboard and a Prometheus scrape together must not add
    one per partition per request. The embedded log answers from memory (ttl 0)."""

    def __init__(self, app: App, ttl: float | None = None) -> None:
        self.app = app
        self.ttl = ttl if ttl is not None else (
            1.0 if app.conf.broker.startswith("kafka") else 0.0)
        self._log: dict[TopicPartition, tuple[float, tuple[int, int]]] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._never_committed: dict[TopicPartition, float] = {}

    def log_offsets(self, tp: TopicPartition) -> tuple[int, int]:
        """(start offset, end offset) of ``tp``."""
        if self.ttl <= 0:
            return self.app.broker.offsets(tp)
        now = time.monotonic()
        known = self._log.get(tp)
        if known is None or now - known[0] > self.ttl:
            known = self._log[tp] = (now, self.app.broker.offsets(tp))
        return known[1]

    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset of ``tp``: what this worker last committed,
        else the broker's answer (asked until it has one: it changes only by a
        commit, and this worker's commits are the first case)."""
        worker = self.app.worker
        own = worker.committed_offsets().get(tp)
        if own is not None:
            return own
        if tp in self._committed:
            return self._committed[tp]
        asked = self._never_committed.get(tp)
        now = time.monotonic()
        if asked is not None and now - asked <= self.ttl:
            return None
        consumer = worker.consumer if worker is not None else None
        committed = consumer.committed(tp) if consumer is not None else None
        if committed is None:
            self._never_committed[tp] = now
            return None
        self._committed[tp] = committed
        return committed


def partitions(app: App, offsets: Offsets | None = None) -> list[dict[str, Any]]:
    """One row per partition this worker owns: committed, position, end offset, lag.

    ``lag`` is Kafka's consumer lag: end offset minus committed offset (where nothing
    was committed yet: minus the offset the group starts from)."""
    worker = app.worker
    consumer = worker.consumer if worker is not None else None
    if consumer is None:
        return []
    offsets = offsets or Offsets(app)
    rows = []
    for tp in sorted(consumer.assignment()):
        start, end = offsets.log_offsets(tp)
        position = consumer.position(tp)
        committed = offsets.committed(tp)
        if committed is not None:
            base = committed
        else:           # nothing committed yet: all from where the group starts reading
            base = start if app.conf.consumer_auto_offset_reset == "earliest" else position
        rows.append({"topic": tp.topic, "partition": tp.partition, "start": start,
                     "committed": committed, "position": position, "end": end,
                     "lag": max(0, end - max(base, start))})
    return rows


def agents(app: App, history: RateHistory | None = None) -> list[dict[str, Any]]:
    out = []
    for name, agent in app.agents.items():
        out.append({
            "name": name,
            "topics": list(agent.channel.topics),
            "events_total": agent.events_total,
            "events_per_second": round(history.rate(name), 2) if history else 0.0,
            "history": [round(r, 2) for r in history.rates.get(name, ())] if history else [],
            "errors": agent.errors,
            "restarts": agent.restarts,
            "concurrency": agent.concurrency,
            "help": agent.help,
        })
    return out


def table_size(table: Table) -> tuple[int, bool]:
    """(number of keys, whether exact). Small tables are counted; big ones report the
    stores' count as of the last commit (RocksDB: its estimate), so a status request
    never scans a big table."""
    stored = sum(store.size(p) for p, store in table.stores().items())
    if stored <= EXACT_SIZE_LIMIT:
        return len(table), True
    return stored, False


def table_summary(app: App, table: Table, offsets: Offsets | None = None
                  ) -> dict[str, Any]:
    offsets = offsets or Offsets(app)
    size, exact = table_size(table)
    changelog = []
    for p, store in sorted(table.stores().items()):
        tp = TopicPartition(table.changelog_topic, p)
        try:
            _start, end = offsets.log_offsets(tp)
        except Exception:  # noqa: BLE001 - the topic may be mid-creation
            end = None
        changelog.append({"partition": p, "offset": store.offset(p), "end": end})
    window = table.window
    # a versioned table's history retention (seconds), and writes too old for it
    retention = getattr(table, "history_retention_ms", None)
    return {
        "name": table.name,
        "size": size,
        "size_exact": exact,
        "global": table.is_global,
        "windowed": window is not None,
        "window": repr(window.window) if window is not None else None,
        "versioned": retention / 1000 if retention is not None else None,
        "late_events": window.late_events if window is not None else
        getattr(table, "late_writes", 0),
        "closed_windows": window.closed_windows if window is not None else 0,
        "key_type": getattr(table.key_type, "__name__", None),
        "changelog_topic": table.changelog_topic,
        "changelog": changelog,
        "help": table.help,
    }


def status(app: App, history: RateHistory | None = None,
           offsets: Offsets | None = None) -> dict[str, Any]:
    """The document ``GET /api/status`` returns (see docs/web.md)."""
    monitor = app.monitor
    worker = app.worker
    dead_letters = dict(monitor.dead_letters)
    offsets = offsets or Offsets(app)
    rows = partitions(app, offsets)
    return {
        "app": app.conf.id,
        "broker": app.conf.broker,
        "pid": os.getpid(),
        "ready": is_ready(app),
        "uptime": round(monitor.uptime, 3),
        "time": time.time(),
        "events_per_second": round(history.total[-1], 2) if history and history.total
        else round(monitor.events_per_second(), 2),
        "events_in": dict(monitor.events_in),
        "events_out": dict(monitor.events_out),
        "agents": agents(app, history),
        "partitions": rows,
        "lag": sum(r["lag"] for r in rows),
        "tables": [table_summary(app, t, offsets) for t in app.tables.values()],
        "dead_letters": dead_letters,
        "dead_letters_total": sum(dead_letters.values()),
        "late_events": dict(monitor.late_events),
        "join_drops": dict(monitor.join_drops),
        "commits": {"count": monitor.commits,
                    "seconds_total": round(monitor.commit_seconds_total, 6),
                    "last_seconds": round(monitor.last_commit_seconds, 6)},
        "timers": [{"name": t.name, "runs": t.runs, "errors": t.errors}
                   for t in app.timers],
        "pages": sorted(app.pages),
        "worker": {"running": worker is not None,
                   "stopping": bool(getattr(worker, "stopping", False))},
    }


def is_ready(app: App) -> bool:
    """Partitions assigned and their tables restored (restores run inside the
    assignment, so an assignment means the tables are restored)."""
    worker = app.worker
    if worker is None or not worker.ready or worker.consumer is None:
        return False
    return bool(worker.consumer.assignment())


# -- JSON ------------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """Table keys and values as JSON can carry them: Records as dicts, tuples as
    lists, datetimes as ISO strings, bytes as text, anything else as its repr."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) \
            else str(value)
    if isinstance(value, dict):
        return {k if isinstance(k, str) else _dict_key(k): jsonable(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, deque)):
        return [jsonable(v) for v in value]
    to_repr = getattr(value, "to_representation", None)
    if callable(to_repr):
        return jsonable(to_repr())
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, Enum):
        return jsonable(value.value)
    return repr(value)


def _dict_key(key: Any) -> str:
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return str(key)
    return json.dumps(jsonable(key), separators=(",", ":"))
