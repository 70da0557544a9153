"""``streamkit`` and ``python app.py``: the command groups and their error handling.

Every command runs under ``Group.invoke`` below: an error a user can cause (unknown
APP, no such topic, a broker URL that cannot be read, a store locked by another worker)
prints one line and exits 1; ``--debug`` (or ``STREAMKIT_DEBUG=1``) shows the traceback.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from streamkit.cli import app_commands, broker_commands, log_commands, wire_command
from streamkit.cli.custom import app_command
from streamkit.cli.shared_options import spread_group_options

if TYPE_CHECKING:
    from streamkit.app import App


def setup_logging(level: str) -> None:
    """Log to stderr at ``level`` (debug, info, warning, error)."""
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="[%(asctime)s] %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


def _debug_wanted(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool((root.obj or {}).get("debug")) or \
        os.environ.get("STREAMKIT_DEBUG", "").lower() in ("1", "true", "yes")


class Group(click.Group):
    """A click group that turns exceptions into one clear line (unless ``--debug``)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException,
                SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            if _debug_wanted(ctx):
                raise
            raise click.ClickException(one_line(exc)) from None


def one_line(exc: BaseException) -> str:
    """``exc`` as one line. streamkit's own errors already say what and where; others
    get their class name and a hint about ``--debug``."""
    from streamkit.errors import StreamkitError
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        # a task group's wrapper: the first real error is the one to show
        exc = exc.exceptions[0]
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, StreamkitError):
        return text
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {text}"
    return f"{type(exc).__name__}: {text} (run with --debug for the traceback)"


@click.group(cls=Group)
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.version_option(package_name="streamkit", prog_name="streamkit")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """streamkit: stream processing on an embedded log or on Kafka."""
    ctx.ensure_object(dict)["debug"] = debug


for _command in (app_commands.COMMANDS + broker_commands.COMMANDS + log_commands.COMMANDS
                 + wire_command.COMMANDS):
    cli.add_command(_command)


@cli.command("demo")
@click.option("--datadir", default=None,
              help="Keep the demo's log and tables here (default: a temporary directory).")
@click.option("--seconds", default=10.0, show_default=True,
              help="Stop after this long even if events remain.")
def demo(datadir: str | None, seconds: float) -> None:
    """Produce the bundled taxi-ride sample and count it, live, in one worker."""
    from streamkit.cli.demo import run_demo
    run_demo(datadir=datadir, max_seconds=seconds)


def _attach_avro_commands() -> None:
    """``streamkit registry`` / ``streamkit schemas``, when fastavro is installed.

    Only looked up, not imported: ``streamkit.avro`` (fastavro, and the REST client's
    urllib/http/ssl) costs tens of milliseconds that every command, the worker's start
    among them, would pay; the commands import it when they run."""
    if importlib.util.find_spec("fastavro") is None:
        logging.getLogger("streamkit.cli").debug("avro commands unavailable: no fastavro")
        return                   # the other commands must still work
    from streamkit.cli.registry_commands import registry, schemas
    cli.add_command(registry)
    cli.add_command(schemas)


_attach_avro_commands()
# every group's options also after its subcommands: `topics create x --broker URL`,
# `worker APP --debug`
spread_group_options(cli)


def app_main(app: App, argv: list[str] | None = None) -> None:
    """The command line of one app script: ``python app.py worker|agents|tables|reset``."""

    @click.group(cls=Group, help=f"Commands of the streamkit app {app.conf.id!r}.")
    @click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
    @click.pass_context
    def group(ctx: click.Context, debug: bool) -> None:
        ctx.ensure_object(dict)["debug"] = debug or app.conf.debug

    app.discover()
    for command in app_commands.commands_for(app):
        group.add_command(command)
    for spec in app.commands.values():      # the app's own (@app.command)
        if spec.name in group.commands:
            raise click.UsageError(f"@app.command {spec.name!r}: streamkit has a "
                                   "command of that name; give it another (name=...)")
        group.add_command(app_command(app, spec))
    spread_group_options(group)
    group.main(args=argv, prog_name=os.path.basename(sys.argv[0]) if sys.argv else "app")


def main() -> None:
    """The ``streamkit`` console script."""
    cli(prog_name="streamkit")
