"""A small HTTP client of a Schema Registry REST API (streamkit's or Confluent's).

It has the same methods as :class:`~streamkit.avro.registry.SchemaRegistry` that the
codec and the CLI use, so ``open_registry("http://host:8081")`` can stand in for the
broker-backed registry. Standard library only (urllib), no extra dependency.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from streamkit import errors
from streamkit.avro.registry import RegisteredSchema
from streamkit.avro.schema import Schema

__all__ = ["RegistryClient"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

_BY_CODE: dict[int, type[errors.SchemaRegistryError]] = {
    cls.error_code: cls for cls in (
        errors.InvalidSchema, errors.InvalidVersion, errors.InvalidCompatibilityLevel,
        errors.IncompatibleSchema, errors.SubjectNotFound, errors.VersionNotFound,
        errors.SchemaNotFound, errors.SubjectSoftDeleted, errors.SubjectNotSoftDeleted,
        errors.VersionSoftDeleted, errors.VersionNotSoftDeleted,
        errors.SubjectConfigNotFound)}


class RegistryClient:
    """Talks to the registry at ``url`` (``http://host:port``)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._by_id: dict[int, Schema] = {}

    def _call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        params = {k: str(v).lower() if isinstance(v, bool) else v
                  for k, v in query.items() if v is not None}
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method, headers={
            "Accept": CONTENT_TYPE, "Content-Type": CONTENT_TYPE})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                text = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                err = json.loads(raw)
                code, message = int(err["error_code"]), str(err["message"])
            except (ValueError, KeyError, TypeError):
                raise errors.SchemaRegistryError(
                    f"{method} {url}: HTTP {exc.code}: {raw[:200]!r}") from None
            cls = _BY_CODE.get(code, errors.SchemaRegistryError)
            raise cls(message) from None
        except urllib.error.URLError as exc:
            raise errors.SchemaRegistryError(f"{method} {url}: {exc.reason}") from None
        return json.loads(text) if text else None

    @staticmethod
    def _path(subject: str) -> str:
        return urllib.parse.quote(subject, safe="")

    def subjects(self, *, deleted: bool = False) -> list[str]:
        return self._call("GET", "/subjects", deleted=deleted or None)

    def versions(self, subject: str, *, deleted: bool = False) -> list[int]:
        return self._call("GET", f"/subjects/{self._path(subject)}/versions",
                          deleted=deleted or None)

    def get_version(self, subject: str, version: int | str = "latest", *,
                    deleted: bool = False) -> RegisteredSchema:
        d = self._call("GET", f"/subjects/{self._path(subject)}/versions/{version}",
                       deleted=deleted or None)
        return RegisteredSchema(d["subject"], d["version"], d["id"],
                                Schema.parse(d["schema"]))

    def schema_by_id(self, schema_id: int) -> Schema:
        schema = self._by_id.get(schema_id)
        if schema is None:
            schema = Schema.parse(self._call("GET", f"/schemas/ids/{schema_id}")["schema"])
            self._by_id[schema_id] = schema
        return schema

    def lookup(self, subject: str, schema: Any, *, deleted: bool = False) -> RegisteredSchema:
        schema = Schema.parse(schema)
        d = self._call("POST", f"/subjects/{self._path(subject)}",
                       {"schema": schema.canonical}, deleted=deleted or None)
        return RegisteredSchema(d["subject"], d["version"], d["id"],
                                Schema.parse(d["schema"]))

    def register(self, subject: str, schema: Any) -> RegisteredSchema:
        schema = Schema.parse(schema)
        d = self._call("POST", f"/subjects/{self._path(subject)}/versions",
                       {"schema": schema.canonical})
        version = d.get("version") or self.lookup(subject, schema).version
        return RegisteredSchema(subject, version, d["id"], schema)

    def register_id(self, subject: str, schema: Any) -> int:
        schema = Schema.parse(schema)
        d = self._call("POST", f"/subjects/{self._path(subject)}/versions",
                       {"schema": schema.canonical})
        self._by_id.setdefault(d["id"], schema)
        return d["id"]

    def check(self, subject: str, schema: Any, version: int | str | None = None) -> list[str]:
        schema = Schema.parse(schema)
        path = f"/compatibility/subjects/{self._path(subject)}/versions"
        if version is not None:
            path += f"/{version}"
        d = self._call("POST", path, {"schema": schema.canonical}, verbose=True)
        if d.get("is_compatible"):
            return []
        return list(d.get("messages") or ["incompatible (the registry gave no reason)"])

    def compatibility(self, subject: str | None = None, *,
                      default_to_global: bool = True) -> str:
        path = "/config" if subject is None else f"/config/{self._path(subject)}"
        return self._call("GET", path, defaultToGlobal=default_to_global if subject else None
                          )["compatibilityLevel"]

    def set_compatibility(self, level: str, subject: str | None = None) -> str:
        path = "/config" if subject is None else f"/config/{self._path(subject)}"
        return self._call("PUT", path, {"compatibility": level.upper()})["compatibility"]

    def delete_subject(self, subject: str, *, permanent: bool = False) -> list[int]:
        return self._call("DELETE", f"/subjects/{self._path(subject)}",
                          permanent=permanent or None)

    def delete_version(self, subject: str, version: int | str, *,
                       permanent: bool = False) -> int:
        return self._call("DELETE", f"/subjects/{self._path(subject)}/versions/{version}",
                          permanent=permanent or None)

    def close(self) -> None:
        pass
