"""The record of the topics an app creates: ``<datadir>/<app id>/internal-topics.json``.

``streamkit reset APP`` deletes the app's internal topics, and which topics those are
cannot be told from their names: ``shop-eu-orders-changelog`` is the changelog of table
``eu-orders`` of app ``shop`` or of table ``orders`` of app ``shop-eu``. So an app
writes down each topic it is about to create, before creating it, and ``reset`` reads
the list back (docs/decisions/502-reset-deletes-internal-topics.md).

The file holds two lists::

    {"version": 1,
     "internal": ["shop-orders-changelog", "shop-orders-customer-repartition"],
     "dead_letter": ["shop-orders-dlq"]}

``internal`` topics (changelogs, repartition topics) are the app's state and ``reset``
deletes them; ``dead_letter`` topics hold the user's undecodable messages and ``reset``
keeps them. A name is written before its topic may exist, so the list may name topics
that were never created; it never misses one that was.

Every worker of the app on this machine may add names at once: each addition reads,
merges and rewrites the file under an exclusive lock on ``internal-topics.lock``, and
the new file replaces the old one by rename after an fsync, so a crash leaves the old
list or the new one, never part of one.
"""
from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from pathlib import Path

from streamkit.errors import StreamkitError
from streamkit.log.storage import fsync_dir, write_atomic

RECORD_FILE = "internal-topics.json"
LOCK_FILE = "internal-topics.lock"
#: the kinds of topic the record keeps apart
INTERNAL = "internal"
DEAD_LETTER = "dead_letter"
KINDS = (INTERNAL, DEAD_LETTER)


class TopicRecord:
    """The topics recorded in one app directory ``<datadir>/<app id>``."""

    def __init__(self, app_dir: Path) -> None:
        self.app_dir = Path(app_dir)
        self.path = self.app_dir / RECORD_FILE

    def exists(self) -> bool:
        """Whether a worker of the app ever recorded a topic here."""
        return self.path.is_file()

    def read(self) -> dict[str, set[str]]:
        """The recorded topic names by kind (empty sets when there is no record)."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {kind: set() for kind in KINDS}
        try:
            data = json.loads(text)
            return {kind: {str(name) for name in data.get(kind, [])} for kind in KINDS}
        except (ValueError, AttributeError, TypeError) as exc:
            raise StreamkitError(f"{self.path}: not a record of topics ({exc}); move it "
                                 "away and delete the app's topics by hand") from None

    def add(self, kind: str, names: Iterable[str]) -> None:
        """Add ``names`` to the ``kind`` list (written to disk before this returns)."""
        if kind not in KINDS:
            raise ValueError(f"topic kind {kind!r}: use one of {', '.join(KINDS)}")
        self.app_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.app_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            recorded = self.read()
            new = set(names) - recorded[kind]
            if new:
                recorded[kind] |= new
                self._write(recorded)
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, recorded: dict[str, set[str]]) -> None:
        data = {"version": 1, **{kind: sorted(recorded[kind]) for kind in KINDS}}
        write_atomic(self.path, json.dumps(data, indent=1).encode())
        fsync_dir(self.app_dir)       # the rename itself must survive a power cut
