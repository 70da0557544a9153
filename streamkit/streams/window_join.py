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

from collections.abc import Callable
from typing import Any, Protocol

from streamkit.streams.stream import Batch, DerivedStream, Stream


class WindowBuffer(Protocol):
    """What the stream reads of a stream-stream join's buffer."""

    def take(self, batch: Batch, start: int, keyed: bool = False
             ) -> tuple[int, list[Any]]:
        """The next results from ``start`` on (the events before it are done)."""

    def settle(self, batch: Batch) -> None:
        """The event of the last results of ``batch`` is done."""


class JoinedStream(DerivedStream):
    """The pairs of a stream-stream join over ``root`` (the agent's stream)."""

    def __init__(self, root: Stream, buffer: WindowBuffer,
                 load_key: Callable[[bytes], Any]) -> None:
        # (the buffer's own methods, with no step between: they give the pairs)
        super().__init__(root, lambda: root._iterate_results(  # noqa: SLF001 - its package
            buffer.take, buffer.settle))
        self._buffer = buffer
        self._load_key = load_key

    def items(self) -> DerivedStream:
        """``(key, (left, right))`` for each result."""
        root, buffer, load_key = self.root, self._buffer, self._load_key
        take = buffer.take

        def take_keyed(batch: Batch, start: int) -> tuple[int, list[Any]]:
            i, results = take(batch, start, True)
            return i, [(load_key(key), pair) for key, pair in results]

        return DerivedStream(root, lambda: root._iterate_results(  # noqa: SLF001
            take_keyed, buffer.settle))
