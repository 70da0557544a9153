"""Counters a worker keeps about itself, for the status line, /api/status and /metrics."""
from __future__ import annotations

import time
from collections import Counter, deque

from streamkit.types import Message


#: upper bounds (seconds) of the processing-latency histogram
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, float("inf"))


class Monitor:
    """Plain counters, updated once per batch (never per event)."""

    def __init__(self) -> None:
        self._latency_counts = [0] * len(LATENCY_BUCKETS)
        self._latency_sum = 0.0
        self.started_at = time.time()
        self.events_in: Counter[str] = Counter()
        self.events_out: Counter[str] = Counter()
        self.dead_letters: Counter[str] = Counter()
        self.late_events: Counter[str] = Counter()
        #: stream events a stream-table join dropped (no table value for an inner
        #: join, no key or no value), by table; counted per event by the join
        self.join_drops: Counter[str] = Counter()
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

    def on_batch_done(self, seconds: float, events: int) -> None:
        """A batch of ``events`` was finished ``seconds`` after it reached its stream
        (every event of it is counted with that latency)."""
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self._latency_counts[i] += events
                break
        self._latency_sum += seconds * events

    def processing_histogram(self) -> tuple[list[tuple[float, int]], float]:
        """``([(upper bound, cumulative count), ...], sum of seconds)`` of the time
        from a batch reaching its stream to the agent finishing it, per event."""
        cumulative, total = [], 0
        for bound, count in zip(LATENCY_BUCKETS, self._latency_counts, strict=True):
            total += count
            cumulative.append((bound, total))
        return cumulative, self._latency_sum

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
        then, before = next((s for s in self._samples if now - s[0] <= window),
                            self._samples[-1])
        return (total - before) / (now - then) if now > then else 0.0

    @property
    def uptime(self) -> float:
        return time.time() - self.started_at
