"""Rates for the ``metrics()`` of ``Producer`` and ``Consumer``, kept without per-record
work: the clients add to plain counters once per batch, and a rate is computed from
samples of a counter taken when ``metrics()`` is called."""
from __future__ import annotations

import time
from collections import deque

#: kafka-python measures rates over two samples of 30 s each.
WINDOW_SECONDS = 30.0


class Rate:
    """The per-second rate of one counter: over the last one to two windows when
    ``metrics()`` is called at least once a window, else since the last call."""

    __slots__ = ("_samples",)

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque([(time.monotonic(), 0)])

    def rate(self, total: int, now: float) -> float:
        """Per second, given the counter's ``total`` now."""
        samples = self._samples
        if now - samples[-1][0] >= WINDOW_SECONDS:
            samples.append((now, total))
        while len(samples) > 1 and now - samples[1][0] >= WINDOW_SECONDS:
            samples.popleft()
        since, then = samples[0]
        return (total - then) / (now - since) if now > since else 0.0


class Rates:
    """A ``Rate`` per counter name."""

    def __init__(self, *names: str) -> None:
        self._rates = {name: Rate() for name in names}

    def of(self, name: str, total: int, now: float) -> float:
        return self._rates[name].rate(total, now)
