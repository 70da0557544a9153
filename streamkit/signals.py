"""``Signal``: Faust's app signals (``app.on_partitions_assigned.connect``).

A receiver is connected with ``@signal.connect`` (with or without parentheses) and
called as Faust calls it: ``receiver(app, *arguments, signal=signal)``. Faust's
receivers take ``**kwargs`` for the ``signal`` keyword; one that does not is called
without it. A receiver may be ``async``: ``send`` calls every receiver and returns the
awaitables of the ``async`` ones, for the caller (the worker) to run.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger("streamkit.signals")


class Signal:
    """Receivers to call when something happens to the app (see the module docstring)."""

    def __init__(self, name: str, sender: Any = None) -> None:
        self.name = name
        #: the first argument of every receiver (the app)
        self.sender = sender
        self._receivers: list[Callable[..., Any]] = []

    def __repr__(self) -> str:
        return f"<Signal {self.name}: {len(self._receivers)} receivers>"

    def connect(self, fun: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Call ``fun`` when the signal is sent; usable as ``@signal.connect`` and
        ``@signal.connect()``. Faust's ``weak=``/``sender=`` options are accepted (a
        signal here belongs to one app, and receivers are held strongly)."""
        def register(receiver: Callable[..., Any]) -> Callable[..., Any]:
            if receiver not in self._receivers:
                self._receivers.append(receiver)
            return receiver
        return register(fun) if fun is not None else register

    def disconnect(self, fun: Callable[..., Any], **options: Any) -> None:
        """Stop calling ``fun``."""
        if fun in self._receivers:
            self._receivers.remove(fun)

    def receivers(self) -> list[Callable[..., Any]]:
        """The connected receivers, in the order they were connected."""
        return list(self._receivers)

    def send(self, *args: Any) -> list[Awaitable[Any]]:
        """Call every receiver with ``(sender, *args)``; returns the awaitables the
        ``async`` ones gave. A receiver that raises is logged; the others still run."""
        pending: list[Awaitable[Any]] = []
        for receiver in list(self._receivers):
            try:
                if _takes_signal(receiver):
                    result = receiver(self.sender, *args, signal=self)
                else:
                    result = receiver(self.sender, *args)
            except Exception:
                logger.exception("receiver %r of signal %s raised", receiver, self.name)
                continue
            if inspect.isawaitable(result):
                pending.append(_logged(result, receiver, self.name))
        return pending

    async def asend(self, *args: Any) -> None:
        """``send``, then wait for the ``async`` receivers, one after the other."""
        for awaitable in self.send(*args):
            await awaitable


def _takes_signal(receiver: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(receiver).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is p.VAR_KEYWORD or p.name == "signal" for p in parameters)


async def _logged(awaitable: Awaitable[Any], receiver: Any, name: str) -> None:
    try:
        await awaitable
    except Exception:
        logger.exception("receiver %r of signal %s raised", receiver, name)
