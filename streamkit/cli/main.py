"""``streamkit`` and ``python app.py``: the command groups."""
from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from streamkit.app import App


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="[%(asctime)s] %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


@click.group()
def cli() -> None:
    """streamkit: stream processing on an embedded log or on Kafka."""


def _worker_command(app_getter: Any) -> click.Command:
    @click.command("worker")
    @click.option("--loglevel", "-l", default="info", show_default=True)
    @click.option("--broker", default=None, help="Override the app's broker URL.")
    @click.option("--web-port", type=int, default=None)
    @click.option("--web-host", default=None)
    @click.option("--without-web", is_flag=True, help="Do not start the web server.")
    def worker(loglevel: str, broker: str | None, web_port: int | None,
               web_host: str | None, without_web: bool) -> None:
        """Run a worker until Ctrl-C / SIGTERM."""
        setup_logging(loglevel)
        app = app_getter()
        if broker:
            app.conf.broker = broker
        if without_web:
            app.conf.web_enabled = False
        app.run_worker(web_port=web_port, web_host=web_host,
                       status_interval=5.0 if sys.stderr.isatty() else None)
    return worker


def app_main(app: App, argv: list[str] | None = None) -> None:
    """The command line of one app script (``python app.py worker``)."""
    group = click.Group(help=f"Commands of the streamkit app {app.conf.id!r}.")
    group.add_command(_worker_command(lambda: app))
    group.main(args=argv, prog_name=sys.argv[0] if sys.argv else "app")


def main() -> None:
    cli()
