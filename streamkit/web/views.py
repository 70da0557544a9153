"""Web views the Faust way: ``streamkit.web.View``, the ``Request`` a view is given and
the ``Response`` it returns.

::

    @app.page("/counts/")
    async def counts(web, request):                  # web: the view (its json, text, ...)
        return web.json({"count": len(vendor_rides)})

    @app.page("/counts/{key}/")
    class Count(streamkit.web.View):
        async def get(self, request, key):           # URL parameters as keyword arguments
            return self.json({"key": key, "count": vendor_rides[int(key)]})

        async def post(self, request, key):
            body = await request.json()
            ...

Nothing here needs the ``web`` extra: an app script declares its views without it; the
worker's server (``streamkit.web.server``) turns requests into :class:`Request` and
:class:`Response` into HTTP. Method names, helpers and errors follow Faust's
``faust.web.View``; see docs/web.md for the differences.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from streamkit.errors import DecodeError, ValidationError
from streamkit.web import exceptions
from streamkit.web.exceptions import WebError
from streamkit.web.status import jsonable

__all__ = ["Request", "Response", "View", "Web", "gives_model", "takes_model"]

_bytes = bytes   # ``View.bytes`` and ``Web.bytes`` hide the builtin in their classes

#: the HTTP methods a view may handle, each by the method of its lower-case name
METHODS = ("head", "get", "post", "patch", "delete", "put", "options", "search")


class Response:
    """What a view answers: a body, a status, a content type and headers."""

    __slots__ = ("body", "status", "content_type", "headers", "reason")

    def __init__(self, body: _bytes = b"", *, status: int = 200,
                 content_type: str = "application/octet-stream",
                 headers: Mapping[str, str] | None = None, reason: str | None = None
                 ) -> None:
        self.body = body
        self.status = status
        self.content_type = content_type
        self.headers: dict[str, str] = dict(headers or {})
        #: kept for Faust's signature; HTTP/1.1 clients ignore reason phrases, and the
        #: server sends the standard one
        self.reason = reason

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.content_type} {len(self.body)} bytes>"

    @property
    def text(self) -> str:
        """The body as text (UTF-8)."""
        return self.body.decode("utf-8", errors="replace")

    @property
    def content_length(self) -> int:
        return len(self.body)


class Web:
    """Builds responses: ``json``, ``text``, ``html``, ``bytes``, as Faust's ``Web``."""

    def text(self, value: str, *, content_type: str | None = None, status: int = 200,
             reason: str | None = None, headers: Mapping[str, str] | None = None
             ) -> Response:
        """A text response (``text/plain`` unless ``content_type`` says otherwise)."""
        return Response(value.encode(), status=status, reason=reason, headers=headers,
                        content_type=content_type or "text/plain; charset=utf-8")

    def html(self, value: str, *, content_type: str | None = None, status: int = 200,
             reason: str | None = None, headers: Mapping[str, str] | None = None
             ) -> Response:
        """An HTML page (``text/html``)."""
        return self.text(value, status=status, reason=reason, headers=headers,
                         content_type=content_type or "text/html; charset=utf-8")

    def json(self, value: Any, *, content_type: str | None = None, status: int = 200,
             reason: str | None = None, headers: Mapping[str, str] | None = None
             ) -> Response:
        """``value`` as JSON (``application/json``): Records as their fields, tuples as
        lists, datetimes as ISO-8601 text, as the table views show them."""
        body = json.dumps(jsonable(value), ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode()
        return Response(body, status=status, reason=reason, headers=headers,
                        content_type=content_type or "application/json")

    def bytes(self, value: _bytes, *, content_type: str | None = None, status: int = 200,
              reason: str | None = None, headers: Mapping[str, str] | None = None
              ) -> Response:
        """Binary data (``application/octet-stream`` unless ``content_type`` says)."""
        return Response(value, status=status, reason=reason, headers=headers,
                        content_type=content_type or "application/octet-stream")

    async def read_request_content(self, request: Request) -> _bytes:
        """The request's body."""
        return await request.read()


class QueryParams(Mapping[str, str]):
    """A request's query parameters: ``query["k"]`` is the first value of ``k`` (as
    aiohttp's, which Faust's views get); ``getall("k")`` every value."""

    def __init__(self, query_string: str) -> None:
        self._pairs = parse_qsl(query_string, keep_blank_values=True)
        self._first: dict[str, str] = {}
        for key, value in self._pairs:
            self._first.setdefault(key, value)

    def __getitem__(self, key: str) -> str:
        return self._first[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def __repr__(self) -> str:
        return f"<QueryParams {self._pairs!r}>"

    def getall(self, key: str, default: Any = ...) -> list[str]:
        """Every value of ``key``, in order (``KeyError`` if none and no default)."""
        values = [v for k, v in self._pairs if k == key]
        if values:
            return values
        if default is ...:
            raise KeyError(key)
        return list(default)

    getlist = getall      # Starlette's name

    def getone(self, key: str, default: Any = ...) -> Any:
        """The first value of ``key``."""
        if key in self._first:
            return self._first[key]
        if default is ...:
            raise KeyError(key)
        return default


class Request:
    """An HTTP request as a view sees it (Faust's ``faust.web.Request``): ``method``,
    ``url``, ``path``, ``headers``, ``query``, ``match_info`` (the URL's parameters),
    ``cookies``, and the body through ``await read()``, ``text()``, ``json()``,
    ``post()``."""

    def __init__(self, *, method: str, url: Any, path: str, headers: Mapping[str, str],
                 query_string: str, match_info: Mapping[str, Any],
                 cookies: Mapping[str, str], read: Callable[[], Awaitable[_bytes]],
                 server_request: Any = None) -> None:
        self.method = method.upper()
        #: the full URL (``str(request.url)``; ``.path``, ``.query``, ``.hostname``)
        self.url = url
        self.path = path
        self.headers = headers
        self.query_string = query_string
        self.match_info = dict(match_info)
        self.cookies = cookies
        self.query = QueryParams(query_string)
        self._read = read
        #: the web server's own request object (Starlette's), for what is not here
        self.server_request = server_request

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path}>"

    @property
    def content_type(self) -> str:
        """The body's media type, without parameters (``application/json``)."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def body_exists(self) -> bool:
        """Whether the request says it has a body."""
        return bool(self.headers.get("content-length", "0") not in ("", "0")
                    or "transfer-encoding" in self.headers)

    def can_read_body(self) -> bool:
        return self.body_exists

    async def read(self) -> _bytes:
        """The body as bytes."""
        return await self._read()

    async def text(self) -> str:
        """The body as text (UTF-8)."""
        return (await self._read()).decode("utf-8", errors="replace")

    async def json(self) -> Any:
        """The body read as JSON; a body that is not JSON raises ``ParseError``, which
        answers 400 unless the view catches it."""
        body = await self._read()
        try:
            return json.loads(body)
        except ValueError as exc:
            raise exceptions.ParseError(f"request body is not JSON: {exc}") from None

    async def post(self) -> QueryParams:
        """The fields of a form body (``application/x-www-form-urlencoded``)."""
        if self.content_type not in ("", "application/x-www-form-urlencoded"):
            raise exceptions.UnsupportedMediaType(
                f"post() reads application/x-www-form-urlencoded bodies, not "
                f"{self.content_type} (server_request.form() reads multipart ones)")
        return QueryParams((await self._read()).decode("latin-1"))


class View:
    """A web view: subclass it, define ``get``/``post``/``put``/``patch``/``delete``
    (``async def get(self, request, **url_parameters)``) and register it with
    ``@app.page(path)``. A method raising a :class:`~streamkit.web.exceptions.WebError`
    (``raise self.NotFound()``) answers its status with ``{"error": detail}``; a method
    the view does not define answers 405."""

    ServerError: ClassVar[type[WebError]] = exceptions.ServerError
    ValidationError: ClassVar[type[WebError]] = exceptions.ValidationError
    ParseError: ClassVar[type[WebError]] = exceptions.ParseError
    NotAuthenticated: ClassVar[type[WebError]] = exceptions.NotAuthenticated
    PermissionDenied: ClassVar[type[WebError]] = exceptions.PermissionDenied
    NotFound: ClassVar[type[WebError]] = exceptions.NotFound
    MethodNotAllowed: ClassVar[type[WebError]] = exceptions.MethodNotAllowed

    view_name: str
    view_path: str

    @classmethod
    def from_handler(cls, fun: Callable[..., Any]) -> type[View]:
        """A View class whose ``get`` is ``fun(view, request, **url_parameters)``."""
        if not callable(fun):
            raise TypeError(f"a view handler must be callable, not {fun!r}")
        return type(getattr(fun, "__name__", "view"), (cls,),
                    {"get": fun, "__doc__": fun.__doc__,
                     "__module__": getattr(fun, "__module__", __name__)})

    def __init__(self, app: Any, web: Web | None = None) -> None:
        self.app = app
        self.web = web if web is not None else Web()
        self.methods: dict[str, Callable[..., Any]] = {
            name: getattr(self, name) for name in METHODS}
        self.__post_init__()

    def __post_init__(self) -> None:
        """Override to set the view up after ``__init__``."""

    def get_methods(self) -> set[str]:
        """The HTTP methods this view handles: HEAD and those it defines."""
        own = {name.upper() for name in METHODS
               if getattr(type(self), name) is not getattr(View, name)}
        return own | {"HEAD"}

    async def __call__(self, request: Request) -> Any:
        return await self.dispatch(request)

    async def dispatch(self, request: Request) -> Any:
        """Call the method of ``request.method`` with the URL's parameters as keyword
        arguments; a ``WebError`` becomes its error response."""
        handler = self.methods.get(request.method.lower())
        try:
            if handler is None:
                raise exceptions.MethodNotAllowed(f"Method {request.method} not allowed.")
            return await handler(request, **request.match_info)
        except WebError as exc:
            return await self.on_request_error(request, exc)

    async def on_request_error(self, request: Request, exc: WebError) -> Response:
        """The response to a ``WebError`` a method raised."""
        return self.error(exc.code, exc.detail, **exc.extra_context)

    async def head(self, request: Request, **kwargs: Any) -> Any:
        """HEAD: what GET answers (the server sends no body)."""
        return await self.get(request, **kwargs)

    async def get(self, request: Request, **kwargs: Any) -> Any:
        raise exceptions.MethodNotAllowed("Method GET not allowed.")

    async def post(self, request: Request, **kwargs: Any) -> Any:
        raise exceptions.MethodNotAllowed("Method POST not allowed.")

    async def put(self, request: Request, **kwargs: Any) -> Any:
        raise exceptions.MethodNotAllowed("Method PUT not allowed.")

    async def patch(self, request: Request, **kwargs: Any) -> Any:
        raise exceptions.MethodNotAllowed("Method PATCH not allowed.")

    async def delete(self, request: Request, **kwargs: Any) -> Any:
        raise exceptions.MethodNotAllowed("Method DELETE not allowed.")

    async def options(self, request: Request, **kwargs: Any) -> Any:
        raise exceptions.MethodNotAllowed("Method OPTIONS not allowed.")

    async def search(self, request: Request, **kwargs: Any) -> Any:
        raise exceptions.MethodNotAllowed("Method SEARCH not allowed.")

    # -- responses (the Web's) -------------------------------------------------------------
    def text(self, value: str, *, content_type: str | None = None, status: int = 200,
             reason: str | None = None, headers: Mapping[str, str] | None = None
             ) -> Response:
        """A text response."""
        return self.web.text(value, content_type=content_type, status=status,
                             reason=reason, headers=headers)

    def html(self, value: str, *, content_type: str | None = None, status: int = 200,
             reason: str | None = None, headers: Mapping[str, str] | None = None
             ) -> Response:
        """An HTML response."""
        return self.web.html(value, content_type=content_type, status=status,
                             reason=reason, headers=headers)

    def json(self, value: Any, *, content_type: str | None = None, status: int = 200,
             reason: str | None = None, headers: Mapping[str, str] | None = None
             ) -> Response:
        """A JSON response."""
        return self.web.json(value, content_type=content_type, status=status,
                             reason=reason, headers=headers)

    def bytes(self, value: _bytes, *, content_type: str | None = None, status: int = 200,
              reason: str | None = None, headers: Mapping[str, str] | None = None
              ) -> Response:
        """A binary response."""
        return self.web.bytes(value, content_type=content_type, status=status,
                              reason=reason, headers=headers)

    async def read_request_content(self, request: Request) -> _bytes:
        """The request's body."""
        return await self.web.read_request_content(request)

    def error(self, status: int, reason: str, headers: Mapping[str, str] | None = None,
              **kwargs: Any) -> Response:
        """A JSON error: ``{"error": reason, **kwargs}`` with ``status``."""
        return self.json({"error": reason, **kwargs}, status=status, headers=headers)

    def notfound(self, reason: str = "Not Found", **kwargs: Any) -> Response:
        """A 404 JSON error (Faust's older form of ``raise self.NotFound()``)."""
        return self.error(404, reason, **kwargs)


Handler = Callable[..., Awaitable[Any]]


def takes_model(model: Any) -> Callable[[Handler], Handler]:
    """Decorate a view method to get the request's JSON body as a ``model`` Record:
    ``async def post(self, request, ride)``. A body that does not decode or validate
    answers 400 with the reason."""
    def decorate(fun: Handler) -> Handler:
        @functools.wraps(fun)
        async def with_model(view: View, request: Request, *args: Any, **kwargs: Any
                             ) -> Any:
            data = await view.read_request_content(request)
            try:
                obj = model.loads(data, serializer="json")
            except (DecodeError, ValidationError) as exc:
                raise exceptions.ValidationError(str(exc)) from None
            return await fun(view, request, obj, *args, **kwargs)
        return with_model
    return decorate


def gives_model(model: Any) -> Callable[[Handler], Handler]:
    """Decorate a view method to answer what it returns (a ``model`` Record) as JSON."""
    def decorate(fun: Handler) -> Handler:
        @functools.wraps(fun)
        async def as_json(view: View, request: Request, *args: Any, **kwargs: Any
                          ) -> Response:
            return view.json(await fun(view, request, *args, **kwargs))
        return as_json
    return decorate
