"""``streamkit broker``: the embedded log served over the Kafka protocol.

Kafka clients (confluent-kafka, kafka-python, kcat...) reach the same files a ``log://``
app in that data directory uses. Which APIs are served so far: docs/broker.md. With
``--registry-port`` the same process also serves the schema registry (the REST API of
``streamkit registry serve``), kept in the ``_schemas`` topic of the same log.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import click

from streamkit.cli.serving import serve_until_stopped

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from streamkit.avro.registry import SchemaRegistry
    from streamkit.wire import WireServer

logger = logging.getLogger("streamkit.wire")


@click.command("broker")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", "-p", type=int, default=9092, show_default=True,
              help="Port to listen on (0: a free one, logged at start).")
@click.option("--datadir", envvar="STREAMKIT_DATADIR", default="stores", show_default=True,
              help="Data root: the log served is <datadir>/log, an app's log:// "
                   "($STREAMKIT_DATADIR).")
@click.option("--auto-create-topics", is_flag=True,
              help="A client asking for a missing topic's metadata creates it "
                   "(Kafka's auto.create.topics.enable).")
@click.option("--max-connections", type=int, default=1000, show_default=True,
              help="Open connections at most; more are closed at once.")
@click.option("--registry-port", type=int, default=None,
              help="Also serve the schema registry's REST API on this port (8081 is the "
                   "usual one; 0: a free one), from the same log, as `streamkit "
                   "registry serve` does.")
@click.option("--status-interval", type=float, default=10.0, show_default=True,
              help="Seconds between status lines (connections, requests, records "
                   "produced and fetched per second); 0: none.")
@click.option("--loglevel", "-l", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]),
              help="Log level (debug: one line per connection).")
def broker(host: str, port: int, datadir: str, auto_create_topics: bool,
           max_connections: int, registry_port: int | None, status_interval: float,
           loglevel: str) -> None:
    """Serve the embedded log over the Kafka protocol (topics, Produce, Fetch and
    ListOffsets; no consumer groups yet; see docs/broker.md)."""
    from streamkit.cli.main import setup_logging
    from streamkit.transport import connect
    from streamkit.transport.embedded import log_root
    try:
        from streamkit.wire import WireServer, cluster_id_for
    except ImportError:
        from streamkit.cli.extras import missing_extra
        raise click.ClickException(missing_extra("broker", "streamkit broker")) from None

    registry = _open_registry(datadir) if registry_port is not None else None
    setup_logging(loglevel)
    root = log_root("log://", datadir).resolve()
    log = connect("log://", datadir=datadir)
    # the cluster id names the directory: two data directories are two clusters
    server = WireServer(log, host=host, port=port, max_connections=max_connections,
                        auto_create_topics=auto_create_topics,
                        cluster_id=cluster_id_for(str(root)))

    async def start(tg: TaskGroup) -> None:
        bound = await tg.start(server.serve)
        logger.info("Kafka protocol on %s:%d, serving the log in %s", host, bound, root)
        if registry is not None:
            from streamkit.web.registry import serve_registry
            web_port = await tg.start(serve_registry, registry, host, registry_port)
            logger.info("schema registry on http://%s:%d (its _schemas topic in the same "
                        "log)", host, web_port)
        if status_interval > 0:
            tg.start_soon(log_status, server, status_interval)

    def close() -> None:
        if registry is not None:
            registry.close()
        log.close()

    serve_until_stopped(start, close)


def _open_registry(datadir: str) -> SchemaRegistry:
    """The schema registry in the log of ``datadir`` (its own connection to the log, as
    ``streamkit registry serve`` has), or a one-line error naming the missing extra."""
    from streamkit.cli.extras import missing_extra
    what = "streamkit broker --registry-port"
    try:
        from streamkit.avro.registry import SchemaRegistry
    except ImportError:
        raise click.ClickException(missing_extra("avro", what)) from None
    try:
        import streamkit.web.registry  # noqa: F401 - starlette and uvicorn are there
    except ImportError:
        raise click.ClickException(missing_extra("web", what)) from None
    from streamkit.transport import connect
    return SchemaRegistry(connect("log://", datadir=datadir), owns_broker=True)


async def log_status(server: WireServer, interval: float) -> None:
    """Every ``interval`` seconds, one info line: open connections, the requests
    answered since the last line, and the records produced and fetched per second."""
    import anyio
    traffic = server.traffic
    last = (server.requests, traffic.produced, traffic.fetched)
    while True:
        await anyio.sleep(interval)
        now = (server.requests, traffic.produced, traffic.fetched)
        requests, produced, fetched = (b - a for a, b in zip(last, now, strict=True))
        logger.info("%d connections, %d requests in %g s; produce %.0f records/s, "
                    "fetch %.0f records/s", server.connections, requests, interval,
                    produced / interval, fetched / interval)
        last = now


COMMANDS: list[click.Command] = [broker]
