"""The stream of a stream-stream join: what an agent over ``left.join(right, ...)``
iterates.

The agent's stream reads both topics (each decoded with its own types); every record
goes through the join's buffer (``WindowJoinBuffer``, in the tables, reached here
only through ``WindowBuffer``), and the agent gets the results it gives:
``(left, right)`` pairs, ``(left, None)``/``(None, right)`` for records that closed
unjoined. ``items()`` gives ``(key, (left, right))`` with the key of the result
(which, for a record that closed, is not the key of the event that closed it).
While the agent holds a result, ``current_event()`` is the record that gave it, and
that record counts as done once the agent asks for the next result after its last.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from streamkit.streams.stream import Batch, DerivedStream, Stream
from streamkit.types import Message


class WindowBuffer(Protocol):
    """What the stream reads of a stream-stream join's buffer."""

    def take(self, topic: str, partition: int, messages: list[Message], values: list[Any],
             start: int) -> tuple[int, list[tuple[bytes, Any, Any]]]: ...

    def settle(self, partition: int) -> None: ...


class JoinedStream(DerivedStream):
    """The pairs of a stream-stream join over ``root`` (the agent's stream)."""

    def __init__(self, root: Stream, buffer: WindowBuffer,
                 load_key: Callable[[bytes], Any]) -> None:
        super().__init__(root, lambda: _results(root, buffer, None))
        self._buffer = buffer
        self._load_key = load_key

    def items(self) -> DerivedStream:
        """``(key, (left, right))`` for each result."""
        root, buffer, load_key = self.root, self._buffer, self._load_key
        return DerivedStream(root, lambda: _results(root, buffer, load_key))


def _results(root: Stream, buffer: WindowBuffer,
             load_key: Callable[[bytes], Any] | None) -> AsyncIterator[Any]:
    take, settle = buffer.take, buffer.settle

    def take_batch(batch: Batch, start: int) -> tuple[int, list[Any]]:
        tp = batch.tp
        i, results = take(tp.topic, tp.partition, batch.messages, batch.values, start)
        if load_key is None:
            return i, [(left, right) for _key, left, right in results]
        return i, [(load_key(key), (left, right)) for key, left, right in results]

    def settle_batch(batch: Batch) -> None:
        # done with the record's results (and, the stream goes on at once, with the
        # record): a commit may write what it changed in the buffers now
        settle(batch.tp.partition)

    return root._iterate_results(take_batch, settle_batch)  # noqa: SLF001 - its package
