"""The stream operators: async generators over a parent stream's values.

``filter``, ``enumerate``, ``items``, ``events``, ``echo``, ``noack`` and ``take`` (see
``streamkit.streams.stream``, whose ``_Operators`` makes them). Every operator passes
``TICK`` on: ``take(within=)`` consumes it.
"""
from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from streamkit.types import TopicPartition

if TYPE_CHECKING:
    from streamkit.streams.stream import Stream, _Operators


class _Tick:
    """Yielded up an operator chain when a ``take(within=)`` deadline passes with no
    new event; every operator passes it on and ``take`` consumes it."""

    def __repr__(self) -> str:
        return "<tick>"


TICK = _Tick()


async def _filter(parent: _Operators, predicate: Callable[[Any], Any]) -> AsyncIterator[Any]:
    async for value in parent:
        if value is TICK:
            yield value
            continue
        keep = predicate(value)
        if hasattr(keep, "__await__"):
            keep = await keep
        if keep:
            yield value


async def _noack(parent: _Operators) -> AsyncIterator[Any]:
    root = parent.root
    pending = root.pending
    async for value in parent:
        if value is not TICK:
            event = root.current_event()
            if event is not None:
                m = event.message
                pending.add(TopicPartition(m.topic, m.partition), m.offset)
        yield value


async def _stamp(parent: _Operators, field: str) -> AsyncIterator[Any]:
    root = parent.root
    async for value in parent:
        if value is not TICK and isinstance(value, dict):
            event = root.current_event()
            if event is not None:
                value[field] = event.timestamp
        yield value


async def _enumerate(parent: _Operators, start: int) -> AsyncIterator[Any]:
    n = start
    async for value in parent:
        if value is TICK:
            yield value
            continue
        yield n, value
        n += 1


async def _items(parent: _Operators) -> AsyncIterator[Any]:
    root = parent.root
    async for value in parent:
        if value is TICK:
            yield value
            continue
        event = root.current_event()
        yield (event.key if event is not None else None), value


async def _events(parent: _Operators) -> AsyncIterator[Any]:
    root = parent.root
    async for value in parent:
        if value is TICK:
            yield value
            continue
        yield root.current_event()


async def _echo(parent: _Operators, channels: tuple[Any, ...]) -> AsyncIterator[Any]:
    root = parent.root
    async for value in parent:
        if value is not TICK:
            event = root.current_event()
            if event is not None:
                for channel in channels:
                    await event.forward(root.context.topic(channel)
                                        if isinstance(channel, str) else channel)
        yield value


class _HandOver(Exception):
    """Raised inside ``take``: an operator below it failed with ``error`` while values
    were collected; they are handed to the agent before the error goes on."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


async def _handing_over(parent: _Operators, buffer: list[Any], root: Stream
                        ) -> AsyncIterator[Any]:
    try:
        async for value in parent:
            yield value
    except Exception as exc:
        if not buffer:
            raise
        raise _HandOver(exc) from exc


async def _take(parent: _Operators, max_: int, within: float | None) -> AsyncIterator[Any]:
    root = parent.root
    buffer: list[Any] = []  # one list for the whole iteration: _handing_over reads it

    def hand_over() -> list[Any]:
        out = buffer[:]
        buffer.clear()
        root.tick_after = None
        return out

    try:
        async for value in _handing_over(parent, buffer, root):
            if value is not TICK:
                if not buffer:
                    root.hold()
                    if within is not None:
                        root.tick_after = time.monotonic() + within
                buffer.append(value)
                if len(buffer) < max_:
                    continue
            elif not buffer:
                continue
            yield hand_over()
            root.release()
    except _HandOver as handover:
        # the values collected before the failure reach the agent first; the error
        # (and the event it came from, which counts as done) follows
        yield hand_over()
        root.release()
        raise handover.error from None
    finally:
        root.tick_after = None
    if buffer:
        yield hand_over()
        root.release()
