"""``stream.tee(n)``: ``n`` streams that each see every event of one stream.

The branches advance in lockstep: the stream below moves to its next event only once
every branch has asked for it. So the event in hand is the same for all of them while
they work on it (``current_event()``, a table's partition), and it counts as done (and
its offset may be committed) only when every branch is done with it. Branches must
therefore be iterated concurrently, each in its own task (``asyncio.gather``, a task
group); a branch that stops iterating no longer holds the others back. Faust had
``tee`` until 2018, with a queue per branch (decision 022).
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio

from streamkit.streams.event import current_stream

if TYPE_CHECKING:
    from streamkit.streams.stream import DerivedStream, _Operators


class Tee:
    """The shared state of ``n`` branches over one parent stream."""

    def __init__(self, parent: _Operators, n: int) -> None:
        self._parent = parent
        self._iterator: AsyncIterator[Any] | None = None
        #: branches still iterating
        self._active = n
        #: branches that asked for the next value since the last one came
        self._asked = 0
        #: how many values came so far (a branch waits for this to change)
        self._generation = 0
        self._value: Any = None
        self._pulling = False
        self._finished = False
        self._error: Exception | None = None
        self._changed = anyio.Event()

    def branches(self, n: int) -> tuple[DerivedStream, ...]:
        from streamkit.streams.stream import DerivedStream
        return tuple(DerivedStream(self._parent.root, self._branch) for _ in range(n))

    def _wake(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def _branch(self) -> AsyncIterator[Any]:
        # a branch runs in a task of its own: point current_event() and the tables
        # at the stream below from this task too
        current_stream.set(self._parent.root)
        seen = self._generation
        asking = False
        try:
            while True:
                self._asked += 1
                asking = True
                while self._generation == seen:
                    if self._finished:
                        if self._error is not None:
                            raise self._error
                        return
                    if self._asked >= self._active and not self._pulling:
                        await self._pull()
                    else:
                        await self._changed.wait()
                seen = self._generation
                asking = False
                yield self._value
        finally:
            if asking and self._generation == seen:
                self._asked -= 1      # left while waiting: it asks no more
            self._active -= 1
            self._wake()

    async def _pull(self) -> None:
        if self._iterator is None:
            self._iterator = self._parent.__aiter__()
        self._pulling = True
        try:
            value = await self._iterator.__anext__()
        except StopAsyncIteration:
            self._finished = True
        except Exception as exc:  # noqa: BLE001 - raised in every branch, not lost
            self._finished = True
            self._error = exc
        except BaseException:
            self._finished = True     # cancelled in the middle: the parent is gone
            raise
        else:
            self._value = value
            self._generation += 1
            self._asked = 0
        finally:
            self._pulling = False
            self._wake()
