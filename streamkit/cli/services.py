"""The services a worker runs beside its agents, as the app's settings ask: the web
server (``web_enabled``) and the schema registry's REST API (``registry_port``).

They live up here, with the command line, because they reach up into ``web`` and
``avro``'s server: the worker only runs what it is given (``Worker(services=...)``).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

if TYPE_CHECKING:
    from streamkit.app import App
    from streamkit.worker import Service, Worker

logger = logging.getLogger("streamkit.worker")


def worker_services(app: App) -> list[Service]:
    """The services for a worker of ``app``."""
    services: list[Service] = []
    if app.conf.web_enabled:
        services.append(serve_web)
    if app.conf.registry_port is not None:
        services.append(serve_schema_registry)
    return services


async def serve_web(worker: Worker, *,
                    task_status: TaskStatus[Any] = anyio.TASK_STATUS_IGNORED) -> None:
    """The app's web views (the web extra), for as long as the worker runs."""
    try:
        from streamkit.web.server import serve
    except ImportError:
        from streamkit.cli.extras import missing_extra
        # a warning: the dashboard (and any @app.page) the user may be waiting for
        # is not there
        logger.warning("web server not available: %s", missing_extra("web", "it"))
        task_status.started()
        return
    task_status.started()
    await serve(worker.app)


async def serve_schema_registry(worker: Worker, *, task_status: TaskStatus[Any] =
                                anyio.TASK_STATUS_IGNORED) -> None:
    """The Schema Registry REST API over the app's registry, once it listens."""
    if worker.registry is None:
        task_status.started()
        return
    try:
        from streamkit.web.registry import serve_registry
    except ImportError:
        from streamkit.cli.extras import missing_extra
        from streamkit.errors import ImproperlyConfigured
        port = worker.app.conf.registry_port
        raise ImproperlyConfigured(missing_extra(
            "web", f"the schema registry's REST API (registry_port={port})")) from None
    conf = worker.app.conf
    async with anyio.create_task_group() as group:
        port = await group.start(serve_registry, worker.registry, conf.web_host,
                                 conf.registry_port)
        logger.info("schema registry on http://%s:%d", conf.web_host, port)
        task_status.started()
