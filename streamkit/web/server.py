"""The worker's HTTP server: Starlette routes served by uvicorn inside the worker's
task group.

Every built-in endpoint reads; none changes state (an ``@app.page`` view may). uvicorn
runs on the worker's own event loop without its signal handlers (SIGINT/SIGTERM stay the
worker's) and stops when its task is cancelled. If the port is taken the worker logs it
and runs on without the web server (see docs/decisions/801-web-port-taken.md).
"""
from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from streamkit.web import metrics, status, tables
from streamkit.web.pages import page_route
from streamkit.web.views import Web
from streamkit.web.asgi import serve_asgi
from streamkit.web.dashboard import DASHBOARD_HTML
from streamkit.web.tables import ViewError

if TYPE_CHECKING:
    from streamkit.app import App

logger = logging.getLogger("streamkit.web")


class _JSON(JSONResponse):
    """JSON with NaN refused at the source: table values go through ``jsonable``."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode()


def _error(exc: ViewError) -> Response:
    return _JSON(exc.body, status_code=exc.status)


def create_app(app: App, history: status.RateHistory | None = None) -> Any:
    """The ASGI application serving ``app``'s views."""
    offsets = status.Offsets(app)
    registry = metrics.registry_for(app, offsets)

    async def dashboard(request: Request) -> Response:
        return HTMLResponse(DASHBOARD_HTML.replace("{{APP_ID}}", _html(app.conf.id)))

    async def api_status(request: Request) -> Response:
        return _JSON(status.status(app, history, offsets))

    async def metrics_view(request: Request) -> Response:
        return Response(metrics.render(registry), media_type=metrics.CONTENT_TYPE)

    async def healthz(request: Request) -> Response:
        return _JSON({"status": "ok", "uptime": round(app.monitor.uptime, 3)})

    async def readyz(request: Request) -> Response:
        ready = status.is_ready(app)
        worker = app.worker
        consumer = worker.consumer if worker is not None else None
        assigned = len(consumer.assignment()) if consumer is not None else 0
        return _JSON({"ready": ready, "partitions_assigned": assigned},
                     status_code=200 if ready else 503)

    async def table_items(request: Request) -> Response:
        try:
            return _JSON(tables.list_items(app, request.path_params["name"],
                                           request.query_params.get("limit"),
                                           request.query_params.get("after")))
        except ViewError as exc:
            return _error(exc)

    async def table_key(request: Request) -> Response:
        key = request.path_params["key"]
        if key.endswith("/"):
            # Faust's form, /table/{name}/{key}/: the slash is not part of the key (a
            # key that ends with one is asked for with a second)
            key = key[:-1]
        try:
            return _JSON(tables.get_key(app, request.path_params["name"], key))
        except ViewError as exc:
            return _error(exc)

    async def table_names(request: Request) -> Response:
        # Faust's /table/: one {"name", "help"} per table
        return _JSON([{"name": name, "help": app.tables[name].help or ""}
                      for name in sorted(app.tables)])

    routes = [
        Route("/", dashboard, methods=["GET"]),
        Route("/api/status", api_status, methods=["GET"]),
        Route("/metrics", metrics_view, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/table", table_names, methods=["GET"]),
        Route("/table/", table_names, methods=["GET"]),
        Route("/table/{name}", table_items, methods=["GET"]),
        # Faust's trailing slash: the table, not the key "" of the route below
        Route("/table/{name}/", table_items, methods=["GET"]),
        Route("/table/{name}/{key:path}", table_key, methods=["GET"]),
    ]
    builtin = {r.path for r in routes}
    responses = Web()
    for path, page in app.pages.items():
        if path in builtin:
            logger.warning("@app.page(%r) hides the built-in view at that path", path)
        routes.insert(0, page_route(app, path, page, responses))

    async def not_found(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 500)
        return _JSON({"error": getattr(exc, "detail", "error"), "status": code,
                      "path": request.url.path}, status_code=code)

    web = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    if app.conf.web_host in LOOPBACK:
        return _LoopbackHostsOnly(web)
    return web


#: addresses that only this machine can reach
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class _LoopbackHostsOnly:
    """Refuses requests whose Host header is not a loopback name (``400``).

    A server on loopback is still reachable from a web page in the user's browser
    through DNS rebinding (``evil.example`` re-resolved to 127.0.0.1); such requests
    carry the attacker's host name. See docs/decisions/804-loopback-host-check.md."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = _host_name(dict(scope["headers"]).get(b"host", b"").decode("latin-1"))
            if host not in LOOPBACK and not host.endswith(".localhost"):
                response = _JSON({"error": f"host {host!r} not allowed: this server "
                                           "answers loopback names only", "status": 400},
                                 status_code=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _host_name(header: str) -> str:
    """``"[::1]:6066"`` -> ``"::1"``, ``"localhost:6066"`` -> ``"localhost"``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


async def serve(app: App, *,
                task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
    """Serve ``app``'s web views on ``app.conf.web_host:web_port`` until cancelled.

    ``web_port=0`` picks a free port; ``app.conf.web_port`` is then set to the port
    bound (and ``await tg.start(serve, app)`` returns it). A port that cannot be bound
    is logged and the function returns: the stream goes on without the web server."""
    host, port = app.conf.web_host, app.conf.web_port
    history = status.RateHistory(app)
    async with anyio.create_task_group() as tg:
        def started(bound: int) -> None:
            app.conf.web_port = bound
            logger.info("web server on http://%s:%d/", _url_host(host), bound)
            tg.start_soon(history.run)
            task_status.started(bound)

        try:
            await serve_asgi(create_app(app, history), host, port, on_started=started,
                             timeout_graceful_shutdown=2, server_header=False)
        except Exception as exc:  # noqa: BLE001 - the worker goes on without it
            logger.error("web server on %s:%d failed: %s (the worker runs on without "
                         "it; pick another port with --web-port or App(web_port=))",
                         host, port, exc)
        tg.cancel_scope.cancel()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
