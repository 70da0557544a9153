"""The Schema Registry, kept in the broker's compacted ``_schemas`` topic.

Every change is one record in ``_schemas`` (1 partition, ``cleanup.policy=compact``), and
a registry's state is the replay of that topic, so it works the same on the embedded log
and on Kafka, and several processes (a worker, ``streamkit registry serve``, the
``streamkit schemas`` CLI) share one registry through the log. Records (JSON):

- key ``{"keytype": "SCHEMA", "subject": s, "version": v}``, value
  ``{"subject", "version", "id", "schema", "deleted"}``; a tombstone is a permanent delete;
- key ``{"keytype": "CONFIG", "subject": s | null}``, value ``{"compatibilityLevel": L}``;
  a tombstone resets a subject to the global level;
- key ``{"keytype": "MAX_ID", "subject": null}``, value ``{"max_id": n}``: written before
  a permanent delete, so ids are never reused after compaction.

There is no leader to hand out ids. A writer picks the next id and version from its
replay, appends, replays again and checks its record took effect: on replay the first
record in log order that claims a (subject, version) or an id wins and later claims are
ignored, so every process agrees. A writer that lost retries with fresh numbers (after
re-appending the winner's record when both used the same key, so that compaction, which
keeps the last record of a key, keeps the winner).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, NamedTuple

from streamkit.avro.compatibility import check_level, validate_level
from streamkit.avro.schema import Schema
from streamkit.errors import (IncompatibleSchema, InvalidVersion, SchemaNotFound,
                              SchemaRegistryError, SubjectConfigNotFound, SubjectNotFound,
                              SubjectNotSoftDeleted, SubjectSoftDeleted, VersionNotFound,
                              VersionNotSoftDeleted, VersionSoftDeleted)
from streamkit.types import OutgoingRecord, TopicPartition

__all__ = ["SCHEMAS_TOPIC", "RegisteredSchema", "SchemaRegistry", "open_registry",
           "parse_version"]

log = logging.getLogger(__name__)

SCHEMAS_TOPIC = "_schemas"
_MAX_VERSION = 2**31 - 1
_WRITE_ATTEMPTS = 8


class RegisteredSchema(NamedTuple):
    """One version of a subject."""

    subject: str
    version: int
    id: int
    schema: Schema
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        """The REST API's shape of a subject version."""
        return {"subject": self.subject, "version": self.version, "id": self.id,
                "schema": str(self.schema)}


class _Version(NamedTuple):
    id: int
    schema: Schema
    deleted: bool


def parse_version(version: int | str) -> int | None:
    """An explicit version number, or None for ``latest`` / ``-1``; else InvalidVersion."""
    if isinstance(version, str):
        text = version.strip().lower()
        if text == "latest":
            return None
        try:
            version = int(text)
        except ValueError:
            raise InvalidVersion(f"The specified version '{version}' is not a valid version "
                                 "id. Allowed values are between [1, 2^31-1] and the "
                                 'string "latest"') from None
    if version == -1:
        return None
    if not 1 <= version <= _MAX_VERSION:
        raise InvalidVersion(f"The specified version '{version}' is not a valid version id."
                             ' Allowed values are between [1, 2^31-1] and the string "latest"')
    return version


def _key(keytype: str, subject: str | None, version: int | None = None) -> bytes:
    key: dict[str, Any] = {"keytype": keytype, "subject": subject}
    if version is not None:
        key["version"] = version
    return json.dumps(key, sort_keys=True, separators=(",", ":")).encode()


class SchemaRegistry:
    """A Schema Registry whose state lives in ``topic`` of ``broker``.

    Methods are synchronous and read the topic's tail first, so changes made by other
    processes are seen. Errors are the Confluent-coded ``SchemaRegistryError`` subclasses.
    """

    def __init__(self, broker: Any, *, topic: str = SCHEMAS_TOPIC,
                 default_compatibility: str = "BACKWARD", owns_broker: bool = False) -> None:
        self.broker = broker
        self.topic = topic
        self._tp = TopicPartition(topic, 0)
        self._owns_broker = owns_broker
        self._default_level = validate_level(default_compatibility)
        self._position = 0
        self._subjects: dict[str, dict[int, _Version]] = {}
        self._schemas: dict[int, Schema] = {}
        self._ids: dict[str, int] = {}          # canonical schema text -> first id
        self._max_id = 0
        self._config: dict[str | None, str] = {}
        broker.create_topic(topic, 1, {"cleanup.policy": "compact"}, exist_ok=True)
        self.refresh()

    # -- replay ---------------------------------------------------------------------
    def refresh(self) -> None:
        """Apply the records appended to ``_schemas`` since the last refresh."""
        start, end = self.broker.offsets(self._tp)
        offset = max(self._position, start)
        while offset < end:
            batch = self.broker.fetch(self._tp, offset, max_records=1000, timeout=0)
            if not batch:
                offset = end
                break
            for msg in batch:
                self._apply(msg.key, msg.value, msg.offset)
                offset = msg.offset + 1
        self._position = max(offset, self._position)

    def _apply(self, key: bytes | None, value: bytes | None, offset: int) -> None:
        try:
            k = json.loads(key or b"null")
            v = None if value is None else json.loads(value)
            keytype = k["keytype"]
            if keytype == "SCHEMA":
                self._apply_schema(k["subject"], int(k["version"]), v)
            elif keytype == "CONFIG":
                self._apply_config(k.get("subject"), v)
            elif keytype == "MAX_ID" and v is not None:
                self._max_id = max(self._max_id, int(v["max_id"]))
        except Exception as exc:  # noqa: BLE001 - a foreign or damaged record must not stop the replay
            log.warning("%s offset %d: skipping unreadable registry record %r: %s",
                        self.topic, offset, key, exc)

    def _apply_schema(self, subject: str, version: int, value: dict[str, Any] | None) -> None:
        versions = self._subjects.setdefault(subject, {})
        if value is None:
            gone = versions.pop(version, None)
            if not versions:
                del self._subjects[subject]
            if gone is not None and not self._id_in_use(gone.id):
                self._schemas.pop(gone.id, None)
                if self._ids.get(gone.schema.canonical) == gone.id:
                    del self._ids[gone.schema.canonical]
            return
        schema_id = int(value["id"])
        known = self._schemas.get(schema_id)
        if known is not None and known.canonical == value["schema"]:
            schema = known            # our own records hold the canonical text
        else:
            schema = Schema.parse(value["schema"])
            if known is not None and known != schema:
                return                # the id was claimed first by another schema
        current = versions.get(version)
        if current is not None and (current.id != schema_id or current.schema != schema):
            return                    # the version was claimed first by another schema
        versions[version] = _Version(schema_id, schema, bool(value.get("deleted")))
        self._schemas[schema_id] = schema
        self._ids.setdefault(schema.canonical, schema_id)
        self._max_id = max(self._max_id, schema_id)

    def _apply_config(self, subject: str | None, value: dict[str, Any] | None) -> None:
        if value is None:
            self._config.pop(subject, None)
        else:
            self._config[subject] = validate_level(value["compatibilityLevel"])

    def _id_in_use(self, schema_id: int) -> bool:
        return any(v.id == schema_id for vs in self._subjects.values() for v in vs.values())

    def _append(self, key: bytes, value: dict[str, Any] | None) -> None:
        body = None if value is None else json.dumps(value, separators=(",", ":")).encode()
        self.broker.produce(self.topic, [OutgoingRecord(key, body)], acks="all")

    def _remember_max_id(self) -> None:
        # Once compaction drops a permanently deleted schema, its id would be forgotten
        # and could be handed out again, and old records would then decode with the
        # wrong schema: keep the highest id ever used under a key of its own.
        self._append(_key("MAX_ID", None), {"max_id": self._max_id})

    def _write_version(self, subject: str, version: int, v: _Version) -> None:
        self._append(_key("SCHEMA", subject, version),
                     {"subject": subject, "version": version, "id": v.id,
                      "schema": v.schema.canonical, "deleted": v.deleted})

    # -- reads ----------------------------------------------------------------------
    def subjects(self, *, deleted: bool = False) -> list[str]:
        """Subjects with at least one live version (or any version, with deleted)."""
        self.refresh()
        return sorted(s for s, vs in self._subjects.items()
                      if any(deleted or not v.deleted for v in vs.values()))

    def _live(self, subject: str, deleted: bool = False) -> dict[int, _Version]:
        versions = {n: v for n, v in self._subjects.get(subject, {}).items()
                    if deleted or not v.deleted}
        if not versions:
            raise SubjectNotFound(f"Subject '{subject}' not found.")
        return versions

    def versions(self, subject: str, *, deleted: bool = False) -> list[int]:
        """Version numbers of a subject, ascending."""
        self.refresh()
        return sorted(self._live(subject, deleted))

    def get_version(self, subject: str, version: int | str = "latest", *,
                    deleted: bool = False) -> RegisteredSchema:
        """One version of a subject (``latest`` or a number)."""
        number = parse_version(version)
        self.refresh()
        versions = self._live(subject, deleted)
        if number is None:
            number = max(n for n, v in versions.items() if not v.deleted) \
                if any(not v.deleted for v in versions.values()) else max(versions)
        v = versions.get(number)
        if v is None:
            raise VersionNotFound(f"Version {number} not found.")
        return RegisteredSchema(subject, number, v.id, v.schema, v.deleted)

    def schema_by_id(self, schema_id: int) -> Schema:
        """The schema with this global id (soft-deleted versions still resolve, so old
        records stay readable)."""
        schema = self._schemas.get(schema_id)
        if schema is None:
            self.refresh()
            schema = self._schemas.get(schema_id)
        if schema is None:
            raise SchemaNotFound(f"Schema {schema_id} not found")
        return schema

    def subject_versions_of_id(self, schema_id: int, *,
                               deleted: bool = False) -> list[tuple[str, int]]:
        """Every (subject, version) that holds the schema with this id."""
        self.refresh()
        if schema_id not in self._schemas:
            raise SchemaNotFound(f"Schema {schema_id} not found")
        return sorted((s, n) for s, vs in self._subjects.items() for n, v in vs.items()
                      if v.id == schema_id and (deleted or not v.deleted))

    def lookup(self, subject: str, schema: Any, *, deleted: bool = False) -> RegisteredSchema:
        """The version of ``subject`` holding ``schema`` (newest if several)."""
        schema = Schema.parse(schema)
        self.refresh()
        versions = self._live(subject, deleted)
        for number in sorted(versions, reverse=True):
            v = versions[number]
            if v.schema == schema:
                return RegisteredSchema(subject, number, v.id, v.schema, v.deleted)
        raise SchemaNotFound("Schema not found")

    # -- compatibility --------------------------------------------------------------
    def compatibility(self, subject: str | None = None, *,
                      default_to_global: bool = True) -> str:
        """The subject's level, else the global one (or SubjectConfigNotFound if
        ``default_to_global`` is False)."""
        self.refresh()
        if subject is not None:
            level = self._config.get(subject)
            if level is not None:
                return level
            if not default_to_global:
                raise SubjectConfigNotFound(
                    f"Subject '{subject}' does not have subject-level compatibility "
                    "configured")
        return self._config.get(None, self._default_level)

    def set_compatibility(self, level: str, subject: str | None = None) -> str:
        """Set the global level, or one subject's."""
        level = validate_level(level)
        self._append(_key("CONFIG", subject), {"compatibilityLevel": level})
        self.refresh()
        return level

    def delete_compatibility(self, subject: str) -> str:
        """Make a subject follow the global level again; returns its previous level."""
        previous = self.compatibility(subject, default_to_global=False)
        self._append(_key("CONFIG", subject), None)
        self.refresh()
        return previous

    def check(self, subject: str, schema: Any,
              version: int | str | None = None) -> list[str]:
        """Why ``schema`` may not be registered under ``subject``: against the versions
        the subject's level names (``version=None``), or against one version in the
        level's direction. Empty when compatible."""
        schema = Schema.parse(schema)
        self.refresh()
        level = self.compatibility(subject)
        live = sorted((n, v.schema) for n, v in self._subjects.get(subject, {}).items()
                      if not v.deleted)
        if version is None:
            return check_level(schema, live, level)
        number = parse_version(version)
        if number is None:
            return check_level(schema, live[-1:], level.removesuffix("_TRANSITIVE"))
        one = self.get_version(subject, number)
        return check_level(schema, [(one.version, one.schema)],
                           level.removesuffix("_TRANSITIVE"))

    # -- writes ---------------------------------------------------------------------
    def register(self, subject: str, schema: Any) -> RegisteredSchema:
        """Register ``schema`` under ``subject``: the existing version if it is already
        there, else a new version (ids are global: a schema known under another subject
        keeps its id). IncompatibleSchema if the subject's level refuses it; then
        nothing is stored."""
        schema = Schema.parse(schema)
        if not subject:
            raise SchemaRegistryError("subject must not be empty")
        for _ in range(_WRITE_ATTEMPTS):
            self.refresh()
            versions = self._subjects.get(subject, {})
            for number in sorted(versions, reverse=True):
                v = versions[number]
                if not v.deleted and v.schema == schema:
                    return RegisteredSchema(subject, number, v.id, v.schema)
            problems = self.check(subject, schema)
            if problems:
                level = self.compatibility(subject)
                raise IncompatibleSchema(
                    f"Schema being registered is incompatible with an earlier schema for "
                    f"subject \"{subject}\" ({level}): " + "; ".join(problems), problems)
            schema_id = self._ids.get(schema.canonical, self._max_id + 1)
            number = max(versions, default=0) + 1
            self._write_version(subject, number, _Version(schema_id, schema, False))
            self.refresh()
            won = self._subjects.get(subject, {}).get(number)
            if won is not None and won.id == schema_id and won.schema == schema:
                return RegisteredSchema(subject, number, schema_id, schema)
            if won is not None:
                # another process took this version first; re-append its record so
                # compaction keeps it rather than ours
                self._write_version(subject, number, won)
        raise SchemaRegistryError(f"could not register a schema under {subject!r}: "
                                  f"{_WRITE_ATTEMPTS} attempts lost to concurrent writers")

    def register_id(self, subject: str, schema: Any) -> int:
        """The id of ``schema`` under ``subject``, registering it if new (the codec's
        SchemaStore interface)."""
        return self.register(subject, schema).id

    def delete_subject(self, subject: str, *, permanent: bool = False) -> list[int]:
        """Soft-delete every version of a subject (ids still resolve); with
        ``permanent``, erase a soft-deleted subject. Returns the versions deleted."""
        self.refresh()
        versions = self._subjects.get(subject)
        if not versions:
            raise SubjectNotFound(f"Subject '{subject}' not found.")
        if permanent:
            if any(not v.deleted for v in versions.values()):
                raise SubjectNotSoftDeleted(
                    f"Subject '{subject}' was not deleted first before being permanently "
                    "deleted")
            numbers = sorted(versions)
            self._remember_max_id()
            for number in numbers:
                self._append(_key("SCHEMA", subject, number), None)
            if subject in self._config:
                self._append(_key("CONFIG", subject), None)
        else:
            numbers = sorted(n for n, v in versions.items() if not v.deleted)
            if not numbers:
                raise SubjectSoftDeleted(
                    f"Subject '{subject}' was soft deleted.Set permanent=true to delete "
                    "permanently")
            for number in numbers:
                self._write_version(subject, number, versions[number]._replace(deleted=True))
        self.refresh()
        return numbers

    def delete_version(self, subject: str, version: int | str, *,
                       permanent: bool = False) -> int:
        """Soft-delete one version (``latest`` or a number); with ``permanent``, erase a
        soft-deleted one. Returns the version number."""
        number = parse_version(version)
        self.refresh()
        versions = self._subjects.get(subject)
        if not versions:
            raise SubjectNotFound(f"Subject '{subject}' not found.")
        if number is None:
            live = [n for n, v in versions.items() if not v.deleted]
            if not live:
                raise SubjectNotFound(f"Subject '{subject}' not found.")
            number = max(live)
        v = versions.get(number)
        if v is None:
            raise VersionNotFound(f"Version {number} not found.")
        if permanent:
            if not v.deleted:
                raise VersionNotSoftDeleted(
                    f"Subject '{subject}' Version {number} was not deleted first before "
                    "being permanently deleted")
            self._remember_max_id()
            self._append(_key("SCHEMA", subject, number), None)
        else:
            if v.deleted:
                raise VersionSoftDeleted(
                    f"Subject '{subject}' Version {number} was soft deleted.Set "
                    "permanent=true to delete permanently")
            self._write_version(subject, number, v._replace(deleted=True))
        self.refresh()
        return number

    def close(self) -> None:
        if self._owns_broker:
            self.broker.close()

    def __enter__(self) -> SchemaRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_registry(url: str = "log://", *, datadir: str | Path = "stores") -> Any:
    """A registry by URL: ``http(s)://host:port`` is a running REST registry (streamkit's
    or Confluent's), anything else a broker URL whose ``_schemas`` topic holds it."""
    if url.startswith(("http://", "https://")):
        from streamkit.avro.client import RegistryClient
        return RegistryClient(url)
    from streamkit.transport import connect
    return SchemaRegistry(connect(url, datadir=datadir), owns_broker=True)
