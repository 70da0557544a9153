"""``@app.page`` views as Starlette routes.

A page is one of three forms (docs/web.md):

- a ``streamkit.web.View`` subclass (Faust's class-based views): one instance serves
  the path; each HTTP method the class defines is routed to its method;
- a function of two or more positional parameters, Faust's ``async def view(web,
  request, **url_parameters)``: made into a View whose ``get`` it is, as Faust does;
- a function of none or one (streamkit's first form): called with nothing or with the
  Starlette request.

Whatever a view returns is answered: a :class:`~streamkit.web.views.Response` or a
Starlette ``Response`` as it is, a dict or list as JSON, a str as HTML. An exception
other than a ``WebError`` is logged and answered with a JSON 500 naming it.
"""
from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request as StarletteRequest
from starlette.responses import HTMLResponse, Response as StarletteResponse
from starlette.routing import Route

from streamkit.web import status
from streamkit.web.views import Request, Response, View, Web

if TYPE_CHECKING:
    from streamkit.app import App

logger = logging.getLogger("streamkit.web")

Endpoint = Callable[[StarletteRequest], Awaitable[StarletteResponse]]


def page_route(app: App, path: str, page: Any, web: Web) -> Route:
    """The route serving ``page`` (a View class or a function) at ``path``."""
    if inspect.isclass(page):
        if not issubclass(page, View):
            raise TypeError(f"@app.page({path!r}) on class {page.__name__}: a class "
                            "page must be a subclass of streamkit.web.View")
        return _view_route(app, path, page, web)
    if _positional_parameters(page) >= 2:          # Faust's (web, request, ...)
        return _view_route(app, path, View.from_handler(page), web)
    return Route(path, _function_endpoint(path, page), methods=["GET"])


def _positional_parameters(fun: Any) -> int:
    try:
        parameters = inspect.signature(fun).parameters.values()
    except (TypeError, ValueError):
        return 0
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in parameters if p.kind in kinds)


def _view_route(app: App, path: str, view_class: type[View], web: Web) -> Route:
    view = view_class(app, web)
    view.view_name = getattr(view_class, "view_name", None) or view_class.__name__
    view.view_path = path

    async def endpoint(request: StarletteRequest) -> StarletteResponse:
        try:
            result = await view.dispatch(_request(request))
        except Exception as exc:  # noqa: BLE001 - any: answered with a 500 naming it
            return _failed(path, request, exc)
        return _answer(result)

    return Route(path, endpoint, methods=sorted(view.get_methods()))


def _function_endpoint(path: str, fun: Callable[..., Any]) -> Endpoint:
    wants_request = _positional_parameters(fun) == 1

    async def endpoint(request: StarletteRequest) -> StarletteResponse:
        try:
            result = fun(request) if wants_request else fun()
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:  # noqa: BLE001 - any: answered with a 500 naming it
            return _failed(path, request, exc)
        return _answer(result)

    return endpoint


def _request(request: StarletteRequest) -> Request:
    """The view's Request of a Starlette request."""
    return Request(method=request.method, url=request.url, path=request.url.path,
                   headers=request.headers, query_string=request.url.query,
                   match_info=request.path_params, cookies=request.cookies,
                   read=request.body, server_request=request)


def _answer(result: Any) -> StarletteResponse:
    if isinstance(result, StarletteResponse):
        return result
    if isinstance(result, Response):
        return StarletteResponse(result.body, status_code=result.status,
                                 headers=result.headers, media_type=result.content_type)
    if isinstance(result, str):
        return HTMLResponse(result)
    return _json(status.jsonable(result))


def _failed(path: str, request: StarletteRequest, exc: Exception) -> StarletteResponse:
    logger.error("@app.page(%r) raised", path, exc_info=exc)
    return _json({"error": f"page {path} raised {type(exc).__name__}: {exc}",
                  "status": 500, "path": request.url.path}, status_code=500)


def _json(content: Any, status_code: int = 200) -> StarletteResponse:
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return StarletteResponse(body.encode(), status_code=status_code,
                             media_type="application/json")
