"""The bound on a table's in-memory cache: which clean keys to drop after a commit.

A table partition's cache is a plain dict (key -> value, or a marker for "not in the
store"), read and written once per event. Keeping it bounded costs nothing per event:
after each commit, once every changed key is in the changelog and the store, the table
trims each partition's cache to its share of ``cache_size`` with :func:`trim`. Dropped
keys are read back from the store when an event needs them again.

Which keys go: a dict keeps insertion order, so the oldest entries are first; keys
written since the previous commit are kept and moved to the back (least recently
written goes first, at commit granularity: a key that is only read ages like a key
not used). No per-event bookkeeping, as in CLOCK caches.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Set
from itertools import islice
from typing import Any


def trim(cache: dict[Any, Any], keep: int, recent: Set[Any]) -> int:
    """Drop entries of ``cache`` until ``keep`` are left: first the oldest entries
    not in ``recent`` (keys written since the previous commit), then, if those are not
    enough, the oldest of ``recent``. Every entry must be clean (in the store); returns
    the number dropped."""
    excess = len(cache) - max(keep, 0)
    if excess <= 0:
        return 0
    oldest = list(islice(cache, excess))
    if recent.isdisjoint(oldest):
        # the usual case (none of the oldest was written lately): drop them in C
        deque(map(cache.__delitem__, oldest), maxlen=0)
        return excess
    victims: list[Any] = []
    spared: list[Any] = []
    for key in cache:
        if key in recent:
            spared.append(key)
        else:
            victims.append(key)
            if len(victims) == excess:
                break
    else:
        # fewer old keys than the excess: the oldest recent ones go too, and what is
        # left of them is already at the back, in order
        victims.extend(spared[:excess - len(victims)])
        spared = []
    for key in victims:
        del cache[key]
    for key in spared:       # written lately: to the back, away from the next trim
        cache[key] = cache.pop(key)
    return len(victims)
