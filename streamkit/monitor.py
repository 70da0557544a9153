"""Counters a worker keeps about itself, for the status line, /api/status and /metrics."""
from __future__ import annotations

import time
from collections import Counter, deque

from streamkit.types import Message


class Monitor:
    """Plain counters, updated once per batch (never per event)."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self.events_in: Counter[str] = Counter()
        self.events_out: Counter[str] = Counter()
        self.dead_letters: Counter[str] = Counter()
        self.late_events: Counter[str] = Counter()
        self.commits = 0
        self.commit_seconds_total = 0.0
        self.last_commit_seconds = 0.0
        #: (monotonic time, events in total) samples for an events/s rate
        self._samples: deque[tuple[float, int]] = deque(maxlen=120)

    def on_fetch(self, messages: list[Message]) -> None:
        topic = messages[0].topic
        if messages[-1].topic == topic:
            self.events_in[topic] += len(messages)
        else:
            for m in messages:
                self.events_in[m.topic] += 1

    def on_send(self, topic: str, count: int) -> None:
        self.events_out[topic] += count

    def on_dead_letter(self, topic: str) -> None:
        self.dead_letters[topic] += 1

    def on_late_event(self, table: str) -> None:
        self.late_events[table] += 1

    def on_commit(self, seconds: float) -> None:
        self.commits += 1
        self.commit_seconds_total += seconds
        self.last_commit_seconds = seconds

    def sample(self) -> None:
        self._samples.append((time.monotonic(), sum(self.events_in.values())))

    def events_per_second(self, window: float = 5.0) -> float:
        """The rate of events fetched over roughly the last ``window`` seconds."""
        if len(self._samples) < 2:
            return 0.0
        now, total = self._samples[-1]
        for then, before in self._samples:
            if now - then <= window:
                break
        return (total - before) / (now - then) if now > then else 0.0

    @property
    def uptime(self) -> float:
        return time.time() - self.started_at
