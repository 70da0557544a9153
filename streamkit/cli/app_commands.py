"""Commands about one App: ``worker``, ``agents``, ``tables``, ``table``, ``reset``.

Each exists twice: ``streamkit worker APP`` (APP found by ``load_app``) and
``python app.py worker`` (the app is the script's own). ``_app_command`` builds both
shapes from one function whose first argument is the App.
"""
from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from streamkit.cli.loading import load_app
from streamkit.cli.output import echo_table
from streamkit.cli.table_command import TABLE_OPTIONS, show_table
from streamkit.errors import BrokerError
from streamkit.internal_topics import DEAD_LETTER, INTERNAL, TopicRecord

if TYPE_CHECKING:
    from streamkit.app import App

APP_HELP = "APP is module:attribute, module (attribute app), or path/to/file.py[:attribute]."


def _app_command(name: str, fun: Callable[..., None], options: list[Callable[..., Any]],
                 app: App | None) -> click.Command:
    """A click command running ``fun(app, **options)``; with ``app=None`` it takes APP."""
    callback: Callable[..., None]
    if app is None:
        def with_spec(app_spec: str, **kwargs: Any) -> None:
            fun(load_app(app_spec), **kwargs)
        callback = with_spec
        params_decorators = [click.argument("app_spec", metavar="APP"), *options]
        help_text = f"{fun.__doc__}\n\n{APP_HELP}"
    else:
        def with_app(**kwargs: Any) -> None:
            fun(app, **kwargs)
        callback = with_app
        params_decorators = list(options)
        help_text = fun.__doc__ or ""
    command: Any = callback
    for decorate in reversed(params_decorators):
        command = decorate(command)
    return click.command(name, help=help_text)(command)


# -- worker ------------------------------------------------------------------------------
def run_worker(app: App, *, broker: str | None, datadir: str | None, loglevel: str,
               concurrency: int | None, web_port: int | None, web_host: str | None,
               without_web: bool, registry_port: int | None = None,
               status_interval: float = 10.0) -> None:
    """Run a worker of the app until Ctrl-C or SIGTERM (exit 0 after a graceful stop)."""
    from streamkit.cli.main import setup_logging
    setup_logging(loglevel)
    app.conf.apply_logging()
    if broker:
        app.conf.broker = broker
    if datadir:
        app.conf.datadir = datadir
    if concurrency is not None:
        if concurrency < 1:
            raise click.BadParameter(f"{concurrency}: must be >= 1", param_hint="--concurrency")
        for agent in app.agents.values():
            agent.concurrency = concurrency
    if without_web:
        app.conf.web_enabled = False
    elif web_port is not None or web_host is not None:
        app.conf.web_enabled = True      # asking for a port means wanting the server
    if registry_port is not None:
        app.conf.registry_port = registry_port
    _ = app.broker                               # a bad broker URL fails here, in one line
    if status_interval < 0:
        raise click.BadParameter(f"{status_interval}: must be >= 0 (0: no status)",
                                 param_hint="--status-interval")
    app.run_worker(web_port=web_port, web_host=web_host,
                   status_interval=status_interval or None,
                   status_on_terminal=sys.stderr.isatty())


WORKER_OPTIONS = [
    click.option("--broker", "-b", default=None,
                 help="Broker URL (log://, memory://, kafka://host:port); overrides the app."),
    click.option("--datadir", default=None, help="Data directory; overrides the app."),
    click.option("--loglevel", "-l", default="info", show_default=True,
                 type=click.Choice(["debug", "info", "warning", "error"],
                                   case_sensitive=False)),
    click.option("--concurrency", "-c", type=int, default=None,
                 help="Instances of every agent in this worker."),
    click.option("--web-port", type=int, default=None,
                 help="Serve the web views on this port (turns the server on)."),
    click.option("--web-host", default=None, help="Address of the web server."),
    click.option("--without-web", is_flag=True, help="Do not start the web server."),
    click.option("--registry-port", type=int, default=None,
                 help="Also serve the Schema Registry REST API on this port."),
    click.option("--status-interval", type=float, default=10.0, show_default=True,
                 metavar="SECONDS",
                 help="Report events/s, events processed, lag and table sizes this "
                      "often: logged at info level, or on a terminal printed when they "
                      "changed. 0: never."),
]


# -- agents, tables ----------------------------------------------------------------------
def show_agents(app: App) -> None:
    """List the app's agents: name, topic, help."""
    rows = [(f"@{agent.name}", ", ".join(agent.channel.topics), _first_line(agent.help))
            for agent in sorted(app.agents.values(), key=lambda a: a.name)]
    echo_table(["name", "topic", "help"], rows, title="Agents")


def show_tables(app: App) -> None:
    """List the app's tables: name, default, windowing, changelog topic, help."""
    rows = []
    for table in sorted(app.tables.values(), key=lambda t: t.name):
        window = table.window
        windowing = (f"{window.window!r} relative to {window.relative_to_name}"
                     if window is not None else None)
        default = getattr(table.default, "__name__", table.default)
        kind = "global " if getattr(table, "is_global", False) else ""
        rows.append((f"{kind}{table.name}", default, windowing, table.changelog_topic,
                     _first_line(table.help)))
    echo_table(["name", "default", "windowing", "changelog topic", "help"], rows,
               title="Tables")


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


# -- reset -------------------------------------------------------------------------------
def reset_app(app: App, *, yes: bool, broker: str | None, datadir: str | None) -> None:
    """Forget the app's progress: delete its group's committed offsets, its table
    stores and the changelog and repartition topics it created (asks first unless
    --yes). Dead-letter topics are kept."""
    if broker:
        app.conf.broker = broker
    if datadir:
        app.conf.datadir = datadir
    group = app.conf.id
    store_dir = _app_dir_inside_datadir(app)
    record = TopicRecord(store_dir)
    recorded = record.read()
    conn = app.broker
    existing = set(conn.list_topics())
    # exactly the topics the app wrote down and its tables' changelogs: never by prefix,
    # since app "shop-eu"'s topics start with "shop-" too
    declared = {table.changelog_topic for table in app.tables.values()}
    internal = sorted((recorded[INTERNAL] | declared) & existing)
    dead_letters = sorted(recorded[DEAD_LETTER] & existing)
    click.echo(f"This deletes, for app {group!r} on {app.conf.broker}:")
    click.echo(f"  the committed offsets of consumer group {group!r}")
    click.echo(f"  the table stores under {store_dir}/" +
               ("" if store_dir.exists() else " (none there)"))
    click.echo("  topics: " + (", ".join(internal) if internal else "(none)"))
    if store_dir.exists() and not record.exists():
        click.echo(f"  (no record of the topics this app's workers created in {store_dir}: "
                   "only its tables' changelogs are known)")
    if dead_letters:
        click.echo("It keeps the dead-letter topics (undecodable input, to read or delete "
                   "with `streamkit topics delete`): " + ", ".join(dead_letters))
    if not yes:
        click.confirm("Go on?", abort=True)
    try:
        conn.delete_group(group)   # refused while a worker is in the group
    except BrokerError as exc:
        raise click.ClickException(f"{exc}: stop the app's workers first, then run "
                                   "reset again (nothing was deleted)") from None
    for topic in internal:
        conn.delete_topic(topic)
    # the record goes last, with the stores: a reset stopped half-way can be run again
    if store_dir.exists():
        shutil.rmtree(store_dir)
    click.echo(f"reset {group!r}: the next worker starts from "
               f"{app.conf.consumer_auto_offset_reset} offsets with empty tables")


def _app_dir_inside_datadir(app: App) -> Path:
    """``<datadir>/<app id>``, refused unless it resolves (symlinks followed) to a
    directory strictly inside the data dir, and is not itself a symlink: reset deletes
    it whole."""
    root = Path(app.conf.datadir).resolve()
    target = app.datadir.resolve()
    if target == root or root not in target.parents:
        raise click.ClickException(
            f"refusing to reset app {app.conf.id!r}: its directory {app.datadir} resolves "
            f"to {target}, outside the data dir {root} (nothing was deleted)")
    if app.datadir.is_symlink():
        raise click.ClickException(
            f"refusing to reset app {app.conf.id!r}: its directory {app.datadir} is a "
            f"symlink to {target}; delete what it holds by hand (nothing was deleted)")
    if app.conf.broker.startswith("log://"):
        from streamkit.transport.embedded import log_root
        log_dir = log_root(app.conf.broker, app.conf.datadir)
        if _holds(app.datadir, log_dir):
            raise click.ClickException(
                f"refusing to reset app {app.conf.id!r}: the embedded log {log_dir} lies "
                f"in its directory {app.datadir}, which reset deletes; move the log "
                "(--broker log://PATH) or the app's data (--datadir) apart (nothing was "
                "deleted)")
    return app.datadir


def _holds(folder: Path, path: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (compared as files, so a case-
    insensitive file system or a symlink cannot hide it)."""
    if not folder.exists():
        return False
    for candidate in [path, *path.parents]:
        try:
            if candidate.exists() and os.path.samefile(candidate, folder):
                return True
        except OSError:
            continue
    return False


RESET_OPTIONS = [
    click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation."),
    click.option("--broker", "-b", default=None, help="Broker URL; overrides the app."),
    click.option("--datadir", default=None, help="Data directory; overrides the app."),
]


def commands_for(app: App | None) -> list[click.Command]:
    """The app commands, taking an APP argument when ``app`` is None."""
    return [
        _app_command("worker", run_worker, WORKER_OPTIONS, app),
        _app_command("agents", show_agents, [], app),
        _app_command("tables", show_tables, [], app),
        _app_command("table", show_table, TABLE_OPTIONS, app),
        _app_command("reset", reset_app, RESET_OPTIONS, app),
    ]


COMMANDS = commands_for(None)
