"""The app's own commands (``@app.command()``), as Faust runs them.

``python app.py --help`` lists them beside ``worker``; each takes the click options and
arguments given to ``@app.command(...)`` (``option`` shows defaults in ``--help``, as
Faust's does). The function gets those as keyword arguments and, when its first
parameter is not one of them, first the ``AppCommand`` running it (Faust's ``self``:
``self.app``, ``self.say()``). An ``async`` function runs in an event loop of its own;
what it sent through the app's topics is written before the command exits.
"""
from __future__ import annotations

import inspect
import sys
from typing import TYPE_CHECKING, Any

import anyio
import click

if TYPE_CHECKING:
    from streamkit.app import App, Command


class option:
    """``click.option`` that shows its default in ``--help`` (Faust's ``option``)."""

    def __init__(self, *args: Any, show_default: bool = True, **kwargs: Any) -> None:
        self.decorate = click.option(*args, show_default=show_default, **kwargs)

    def __call__(self, fun: Any) -> Any:
        return self.decorate(fun)


class argument:
    """``click.argument`` (Faust's ``argument``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.decorate = click.argument(*args, **kwargs)

    def __call__(self, fun: Any) -> Any:
        return self.decorate(fun)


class AppCommand:
    """What a command function gets as ``self``: the app and a way to print."""

    def __init__(self, app: App, ctx: click.Context) -> None:
        self.app = app
        self.ctx = ctx

    def say(self, message: Any, file: Any = None, err: Any = None, **kwargs: Any) -> None:
        """Print ``message`` (to stdout, or ``file``)."""
        click.echo(message, file=file or (sys.stderr if err else None), **kwargs)

    def carp(self, message: Any, **kwargs: Any) -> None:
        """Print ``message`` to stderr."""
        click.echo(message, err=True, **kwargs)


def app_command(app: App, spec: Command) -> click.Command:
    """The click command of one ``@app.command()``."""
    def callback(**kwargs: Any) -> None:
        fun = spec.fun
        args: tuple[Any, ...] = ()
        if _takes_command(fun, set(kwargs)):
            args = (AppCommand(app, click.get_current_context()),)
        try:
            anyio.run(_run, app, spec, args, kwargs)
        except KeyboardInterrupt:
            if not spec.daemon:
                raise
    command: Any = callback
    for decorate in reversed(spec.options):
        command = decorate(command)
    return click.command(spec.name, help=inspect.getdoc(spec.fun) or "")(command)


async def _run(app: App, spec: Command, args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> None:
    try:
        result = spec.fun(*args, **kwargs)
        if inspect.isawaitable(result):
            await result
    finally:
        if len(app.sender.buffer):
            app.sender.buffer.flush()
    if spec.daemon:              # Faust's daemon commands run until Ctrl-C
        await anyio.sleep_forever()


def _takes_command(fun: Any, options: set[str]) -> bool:
    """Whether ``fun``'s first parameter is Faust's ``self`` (not an option)."""
    try:
        parameters = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        return False
    return bool(parameters) and parameters[0].name not in options and \
        parameters[0].kind in (inspect.Parameter.POSITIONAL_ONLY,
                               inspect.Parameter.POSITIONAL_OR_KEYWORD)
