"""The Schema Registry's HTTP server: the part of Confluent's Schema Registry REST API
that clients (confluent-kafka's SchemaRegistryClient, AvroSerializer/AvroDeserializer,
curl) use, with Confluent's JSON error bodies ``{"error_code": 40401, "message": ...}``.

The registry itself (``streamkit.avro.registry``) keeps its schemas in the broker and
knows nothing of HTTP; this module is a view over it, in the web layer beside the
worker's own server. Needs the ``web`` extra (starlette, uvicorn).

Run it with ``streamkit registry serve`` or, inside a worker's task group, with
``await tg.start(serve_registry, registry, host, port)``.
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from streamkit.avro.registry import SchemaRegistry
from streamkit.avro.schema import Schema
from streamkit.errors import InvalidSchema, SchemaRegistryError
from streamkit.web.asgi import serve_asgi

__all__ = ["CONTENT_TYPE", "create_app", "serve_registry"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

Handler = Callable[[Request, SchemaRegistry], Awaitable[Any]]


class _Reply(JSONResponse):
    media_type = CONTENT_TYPE


def _error(status: int, code: int, message: str) -> Response:
    """A Confluent error body: ``{"error_code": code, "message": message}``."""
    return _Reply({"error_code": code, "message": message}, status_code=status)


def _flag(request: Request, name: str) -> bool:
    """Whether the query parameter ``name`` is ``true`` (Confluent's boolean flags)."""
    return request.query_params.get(name, "false").lower() == "true"


async def _schema_body(request: Request) -> Schema:
    """The schema of a register / lookup / compatibility request body."""
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise _BadRequest(f"request body is not JSON: {exc}") from None
    if not isinstance(body, dict) or not body.get("schema"):
        raise InvalidSchema("Empty schema")
    kind = str(body.get("schemaType") or "AVRO").upper()
    if kind != "AVRO":
        raise InvalidSchema(f"Invalid schema type {kind}: this registry holds AVRO only")
    if body.get("references"):
        raise InvalidSchema("schema references are not supported by this registry")
    if not isinstance(body["schema"], str):
        raise InvalidSchema("the schema must be a JSON string holding the Avro schema")
    return Schema.parse(body["schema"])


class _BadRequest(Exception):
    """A request this server cannot read (not JSON, a bad id): HTTP 400."""


def _endpoint(handler: Handler, registry: SchemaRegistry
              ) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint calling ``handler`` on ``registry``: registry errors become
    Confluent error bodies, plain results JSON replies."""
    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request, registry)
        except SchemaRegistryError as exc:
            return _error(exc.http_status, exc.error_code, exc.message)
        except _BadRequest as exc:
            return _error(400, 400, str(exc))
        return result if isinstance(result, Response) else _Reply(result)
    return endpoint


# -- handlers (one per route; each reads its request and calls the registry) ----------

async def root(request: Request, reg: SchemaRegistry) -> Any:
    """``GET /``: an empty object, which clients use as a health check."""
    return {}


async def list_subjects(request: Request, reg: SchemaRegistry) -> Any:
    """``GET /subjects[?deleted=true]``."""
    return reg.subjects(deleted=_flag(request, "deleted"))


async def list_versions(request: Request, reg: SchemaRegistry) -> Any:
    """``GET /subjects/{subject}/versions[?deleted=true]``."""
    return reg.versions(request.path_params["subject"], deleted=_flag(request, "deleted"))


async def get_version(request: Request, reg: SchemaRegistry) -> Any:
    """``GET /subjects/{subject}/versions/{version}``: subject, version, id and schema."""
    p = request.path_params
    return reg.get_version(p["subject"], p["version"],
                           deleted=_flag(request, "deleted")).to_json()


async def get_version_schema(request: Request, reg: SchemaRegistry) -> Any:
    """``GET /subjects/{subject}/versions/{version}/schema``: the schema alone."""
    p = request.path_params
    schema = reg.get_version(p["subject"], p["version"], deleted=_flag(request, "deleted"))
    return Response(schema.schema.canonical, media_type=CONTENT_TYPE)


async def register(request: Request, reg: SchemaRegistry) -> Any:
    """``POST /subjects/{subject}/versions``: register, or find, the body's schema."""
    schema = await _schema_body(request)
    done = reg.register(request.path_params["subject"], schema)
    return {"id": done.id, "version": done.version}


async def lookup(request: Request, reg: SchemaRegistry) -> Any:
    """``POST /subjects/{subject}``: the version of ``subject`` holding the body's schema."""
    schema = await _schema_body(request)
    return reg.lookup(request.path_params["subject"], schema,
                      deleted=_flag(request, "deleted")).to_json()


async def delete_subject(request: Request, reg: SchemaRegistry) -> Any:
    """``DELETE /subjects/{subject}[?permanent=true]``: the versions deleted."""
    return reg.delete_subject(request.path_params["subject"],
                              permanent=_flag(request, "permanent"))


async def delete_version(request: Request, reg: SchemaRegistry) -> Any:
    """``DELETE /subjects/{subject}/versions/{version}[?permanent=true]``."""
    p = request.path_params
    return reg.delete_version(p["subject"], p["version"],
                              permanent=_flag(request, "permanent"))


def _schema_id(request: Request) -> int:
    """The ``{id}`` of a ``/schemas/ids/{id}`` path, as a number."""
    try:
        return int(request.path_params["id"])
    except ValueError:
        raise _BadRequest(f"schema id {request.path_params['id']!r} is not a number") from None


async def schema_by_id(request: Request, reg: SchemaRegistry) -> Any:
    """``GET /schemas/ids/{id}``: ``{"schema": ...}``."""
    return {"schema": reg.schema_by_id(_schema_id(request)).canonical}


async def schema_by_id_raw(request: Request, reg: SchemaRegistry) -> Any:
    """``GET /schemas/ids/{id}/schema``: the schema alone."""
    return Response(reg.schema_by_id(_schema_id(request)).canonical, media_type=CONTENT_TYPE)


async def subjects_of_id(request: Request, reg: SchemaRegistry) -> Any:
    """``GET /schemas/ids/{id}/subjects``: the subjects holding the schema."""
    pairs = reg.subject_versions_of_id(_schema_id(request), deleted=_flag(request, "deleted"))
    return sorted({s for s, _ in pairs})


async def versions_of_id(request: Request, reg: SchemaRegistry) -> Any:
    """``GET /schemas/ids/{id}/versions``: the (subject, version) pairs holding it."""
    pairs = reg.subject_versions_of_id(_schema_id(request), deleted=_flag(request, "deleted"))
    return [{"subject": s, "version": v} for s, v in pairs]


async def schema_types(request: Request, reg: SchemaRegistry) -> Any:
    """``GET /schemas/types``: this registry holds Avro only."""
    return ["AVRO"]


async def compatibility(request: Request, reg: SchemaRegistry) -> Any:
    """``POST /compatibility/subjects/{subject}/versions[/{version}][?verbose=true]``."""
    schema = await _schema_body(request)
    subject = request.path_params["subject"]
    version = request.path_params.get("version")
    if version is not None and str(version).lower() in ("latest", "-1") and \
            subject not in reg.subjects():
        messages: list[str] = []      # nothing to be incompatible with
    else:
        messages = reg.check(subject, schema, version)
    reply: dict[str, Any] = {"is_compatible": not messages}
    if _flag(request, "verbose"):
        reply["messages"] = messages
    return reply


async def _level_body(request: Request) -> str:
    """The level of a ``PUT /config`` body (``compatibility`` or ``compatibilityLevel``)."""
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise _BadRequest(f"request body is not JSON: {exc}") from None
    level = body.get("compatibility") or body.get("compatibilityLevel") \
        if isinstance(body, dict) else None
    if not level:
        raise _BadRequest('body must be {"compatibility": "<LEVEL>"}')
    return str(level)


async def get_config(request: Request, reg: SchemaRegistry) -> Any:
    """``GET /config[/{subject}][?defaultToGlobal=true]``: the compatibility level."""
    subject = request.path_params.get("subject")
    return {"compatibilityLevel": reg.compatibility(
        subject, default_to_global=subject is None or _flag(request, "defaultToGlobal"))}


async def put_config(request: Request, reg: SchemaRegistry) -> Any:
    """``PUT /config[/{subject}]``: set the compatibility level."""
    level = await _level_body(request)
    return {"compatibility": reg.set_compatibility(level, request.path_params.get("subject"))}


async def delete_config(request: Request, reg: SchemaRegistry) -> Any:
    """``DELETE /config/{subject}``: the subject falls back to the global level."""
    return {"compatibilityLevel": reg.delete_compatibility(request.path_params["subject"])}


async def get_mode(request: Request, reg: SchemaRegistry) -> Any:
    """``GET /mode[/{subject}]``: always READWRITE."""
    return {"mode": "READWRITE"}


_ROUTES: list[tuple[str, list[str], Handler]] = [
    ("/", ["GET"], root),
    ("/subjects", ["GET"], list_subjects),
    ("/subjects/{subject}", ["POST"], lookup),
    ("/subjects/{subject}", ["DELETE"], delete_subject),
    ("/subjects/{subject}/versions", ["GET"], list_versions),
    ("/subjects/{subject}/versions", ["POST"], register),
    ("/subjects/{subject}/versions/{version}", ["GET"], get_version),
    ("/subjects/{subject}/versions/{version}", ["DELETE"], delete_version),
    ("/subjects/{subject}/versions/{version}/schema", ["GET"], get_version_schema),
    ("/schemas/types", ["GET"], schema_types),
    ("/schemas/ids/{id}", ["GET"], schema_by_id),
    ("/schemas/ids/{id}/schema", ["GET"], schema_by_id_raw),
    ("/schemas/ids/{id}/subjects", ["GET"], subjects_of_id),
    ("/schemas/ids/{id}/versions", ["GET"], versions_of_id),
    ("/compatibility/subjects/{subject}/versions", ["POST"], compatibility),
    ("/compatibility/subjects/{subject}/versions/{version}", ["POST"], compatibility),
    ("/config", ["GET"], get_config),
    ("/config", ["PUT"], put_config),
    ("/config/{subject}", ["GET"], get_config),
    ("/config/{subject}", ["PUT"], put_config),
    ("/config/{subject}", ["DELETE"], delete_config),
    ("/mode", ["GET"], get_mode),
    ("/mode/{subject}", ["GET"], get_mode),
]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no route, wrong method) as Confluent error bodies."""
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", str(exc))
    if status == 404:
        detail = f"HTTP 404 Not Found: no endpoint {request.method} {request.url.path}"
    return _error(status, status, str(detail))


def create_app(registry: SchemaRegistry) -> Starlette:
    """The Starlette app serving ``registry``."""
    routes = [Route(path, _endpoint(handler, registry), methods=methods)
              for path, methods, handler in _ROUTES]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


async def serve_registry(registry: SchemaRegistry, host: str = "127.0.0.1",
                         port: int = 8081, *,
                         task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
                         ) -> None:
    """Serve ``registry`` over HTTP until cancelled.

    For a task group: ``port = await tg.start(serve_registry, registry, host, port)``
    returns once the server listens, with the bound port (``port=0`` picks a free one).
    Cancelling the task stops the server cleanly. Signals are left to the caller: uvicorn
    installs no handlers here. A port that cannot be bound raises ``OSError``.
    """
    try:
        await serve_asgi(create_app(registry), host, port, on_started=task_status.started)
    except OSError as exc:
        raise OSError(f"schema registry: {exc}") from None
