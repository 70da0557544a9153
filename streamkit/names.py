"""Topic names, app ids, and the topic names an app derives from its id.

Kafka's rule for a topic name: 1 to 249 characters of ``[a-zA-Z0-9._-]``, and not
``.`` or ``..``. An app id follows the same rule, because it is the first part of the
app's topic names and the name of its directory ``<datadir>/<app id>/`` (``..`` or
``/abs/path`` as an id would put that directory outside the data dir).

An app derives topic names from its id (see docs/decisions/008-derived-topic-names.md):

- ``<app id>-<table>-changelog``       a table's changelog
- ``<app id>-<name>-repartition``      a ``group_by``'s repartition topic
- ``<app id>-<topic>-dlq``             dead letters of a topic the app consumes
- ``<app id>-<agent>``                 the topic of an agent declared without one

:func:`derived_topic_name` is the one place these are made. A name longer than 249
characters is shortened: the start is kept, the rest of the middle part is replaced by a
hash of the whole name, and the suffix (``-changelog``, ...) stays, so the result is
always a valid topic name, the same for the same input, and different for inputs that
differ anywhere, even after a long common prefix.

This module is pure (no I/O) and sits at the bottom of the layers, beside ``errors``.
"""
from __future__ import annotations

import hashlib
import re

from streamkit.errors import ImproperlyConfigured, InvalidTopicName

#: Kafka's longest topic name.
MAX_TOPIC_NAME_LENGTH = 249
#: Kafka's topic-name rule, as error messages state it.
TOPIC_NAME_RULE = "1-249 characters of [a-zA-Z0-9._-], not '.' or '..'"

CHANGELOG = "changelog"
REPARTITION = "repartition"
DEAD_LETTER = "dlq"

#: hex digits of the hash a shortened name carries (48 bits: a clash between two names
#: of one app is not to be expected)
HASH_LENGTH = 12

_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}\Z")
_NAME_PART = re.compile(r"[a-zA-Z0-9._-]+\Z")

#: app ids whose directory ``<datadir>/<app id>`` is something else's
RESERVED_APP_IDS = {"log": "<datadir>/log is the embedded log's directory"}


def is_topic_name(name: object) -> bool:
    """Whether Kafka accepts ``name`` as a topic name."""
    return isinstance(name, str) and bool(_TOPIC_NAME.match(name)) and name not in (".", "..")


def check_topic_name(name: object) -> str:
    """Return ``name`` if Kafka would accept it as a topic name, else raise
    ``InvalidTopicName`` naming it and the rule."""
    if not isinstance(name, str) or not is_topic_name(name):
        raise InvalidTopicName(f"invalid topic name {name!r}: use {TOPIC_NAME_RULE}")
    return name


def check_app_id(app_id: object) -> str:
    """Return ``app_id`` if it follows Kafka's topic-name rule and is not reserved,
    else raise ``ImproperlyConfigured`` naming it and the rule."""
    if not isinstance(app_id, str) or not is_topic_name(app_id):
        raise ImproperlyConfigured(
            f"app id {app_id!r} is not valid: use {TOPIC_NAME_RULE} (Kafka's topic-name "
            "rule; the id begins the app's topic names and names its directory "
            "<datadir>/<app id>)")
    if app_id in RESERVED_APP_IDS:
        raise ImproperlyConfigured(
            f"app id {app_id!r} is reserved: {RESERVED_APP_IDS[app_id]}; choose another id")
    return app_id


def derived_topic_name(app_id: str, name: str, suffix: str = "", *,
                       what: str = "name") -> str:
    """The topic ``<app id>-<name>[-<suffix>]``, shortened to 249 characters if longer.

    ``app_id`` must be valid (see :func:`check_app_id`). ``name`` (a table, group_by or
    agent name, or a topic) must be made of ``[a-zA-Z0-9._-]``; otherwise this raises
    ``ImproperlyConfigured`` naming it as ``what``.
    """
    if not isinstance(name, str) or not _NAME_PART.match(name):
        raise ImproperlyConfigured(
            f"{what} {name!r} cannot be part of the topic name "
            f"'{app_id}-...{'-' + suffix if suffix else ''}': use only the characters "
            "[a-zA-Z0-9._-]")
    tail = f"-{suffix}" if suffix else ""
    full = f"{app_id}-{name}{tail}"
    if len(full) <= MAX_TOPIC_NAME_LENGTH:
        return full
    # hash the whole name, so inputs sharing the part that is kept still differ
    digest = hashlib.sha256(full.encode()).hexdigest()[:HASH_LENGTH]
    tail = f"-{digest}{tail}"
    return f"{app_id}-{name}"[:MAX_TOPIC_NAME_LENGTH - len(tail)] + tail
