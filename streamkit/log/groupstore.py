"""Where consumer-group state lives: a directory shared by processes (log://), or this
process's memory (memory://). ``streamkit.log.groups`` holds the protocol on top.

On disk, ``<root>/__consumer_groups/<group>/``, where ``<group>`` is the url-quoted
group id, or ``#<sha256 of the id>`` when the quoted id is longer than a file name may
be (docs/decisions/107-group-ids-of-any-length.md)::

    group_id           the real id, UTF-8 (hashed directories only)
    lock               flock'd while the state or the offsets change
    state.json         {"generation": g, "members": {id: {"topics": [...]}},
                        "assignment": {id: [[topic, partition], ...]}}
    offsets.json       {"<topic>": {"<partition>": next offset to read}}
    members/<id>       flock'd by the member for its whole life; mtime = last heartbeat
    owners/<topic>-<p> flock'd by the member reading that partition right now; holds
                       its member id (a member dropped from the group while it
                       still holds the flock, a stopped process, is replaced: a new
                       file renamed over this one, decision 160)

A process that dies loses its flocks at once, so its member file can be locked by
anyone: that is how the others know it is gone, with no server and no waiting.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol, TypedDict
from urllib.parse import quote, unquote

from streamkit.errors import BrokerError, InvalidConfig
from streamkit.log.storage import write_atomic
from streamkit.types import TopicPartition

Offsets = dict[TopicPartition, int]


class MemberInfo(TypedDict):
    """A member in ``state.json``: the topics it subscribes to."""

    topics: list[str]


class GroupState(TypedDict):
    """``state.json``: the generation, its members, and what each of them reads."""

    generation: int
    members: dict[str, MemberInfo]
    #: member id -> ``[topic, partition]`` pairs (JSON arrays)
    assignment: dict[str, list[list[str | int]]]


def _empty_state() -> GroupState:
    return {"generation": 0, "members": {}, "assignment": {}}


class GroupStore(Protocol):
    """One member's handle on where its group's state lives: ``FileGroupStore``
    (log://, shared by processes) or ``MemoryGroupStore`` (memory://). The protocol
    of joining, rebalancing and committing is ``streamkit.log.groups``."""

    def register(self, member_id: str) -> None:
        """Join as a live member."""
        ...

    def heartbeat(self, member_id: str) -> None: ...

    def is_alive(self, member_id: str, session_timeout: float) -> bool:
        """Whether the member's process still holds it and it beat in time."""
        ...

    def forget(self, member_id: str) -> None:
        """Remove a dead member (under ``locked``)."""
        ...

    def unregister(self, member_id: str) -> None: ...

    def locked(self) -> AbstractContextManager[None]:
        """The group lock: held while the state or the offsets change (and while a
        transaction holding offsets of the group commits). Reentrant."""
        ...

    def state_version(self) -> object:
        """Changes whenever the state is written."""
        ...

    @property
    def directory(self) -> Path | None:
        """Where a new state appears as a renamed-in ``state.json`` (a waiting member
        watches it); None in memory."""
        ...

    def read_state(self) -> GroupState: ...
    def write_state(self, state: GroupState) -> None: ...

    def acquire(self, tp: TopicPartition, member_id: str) -> bool:
        """Take ownership of reading ``tp``; False while another member holds it."""
        ...

    def release(self, tp: TopicPartition, member_id: str) -> None: ...

    def owner(self, tp: TopicPartition) -> str | None:
        """The member holding ``tp`` (None if nobody does, or it is not known)."""
        ...

    def take_over(self, tp: TopicPartition, member_id: str) -> None:
        """Under ``locked``: own ``tp`` in place of its holder, a member that left
        the group without letting go of it (its process is stopped or hung)."""
        ...

    def read_offsets(self) -> Offsets: ...

    def write_offsets(self, offsets: Offsets) -> None:
        """Merge ``offsets`` into the group's committed offsets, durably."""
        ...

    def close(self) -> None: ...


#: the longest file name (one path component) Linux file systems take, in bytes
NAME_MAX = 255
#: first character of hashed names: ``quote(..., safe="")`` always escapes "#", so no
#: readable group directory name starts with it (and topic names cannot hold it)
_HASHED = "#"
#: the file holding the real id inside a hashed group directory
_ID_FILE = "group_id"


def _hashed(text: str) -> str:
    return _HASHED + hashlib.sha256(text.encode()).hexdigest()


def group_dir_name(group_id: str) -> str:
    """A file name for any group id (ids are free text of any length in Kafka).

    The url-quoted id when it fits in a file name (so groups keep the readable
    directory they always had), else ``#`` and the id's SHA-256 in hex; the real id is
    then kept in the directory's ``group_id`` file.
    """
    if not isinstance(group_id, str) or not group_id:
        raise InvalidConfig(f"group id {group_id!r} must be a non-empty string")
    name = quote(group_id, safe="")
    name = "%2E" + name[1:] if name.startswith(".") else name
    return name if len(name) <= NAME_MAX else _hashed(group_id)  # quoted: ASCII


def _owner_file_name(tp: TopicPartition) -> str:
    """``<topic>-<partition>``; hashed past NAME_MAX (a 249-character topic name, Kafka's
    longest, with a partition number of six digits)."""
    name = f"{tp.topic}-{tp.partition}"
    return name if len(name) <= NAME_MAX else _hashed(name)  # topic names are ASCII


def _keep_group_id(path: Path, group_id: str) -> None:
    """Write the real id into a hashed group directory (once), so that listing shows
    it; refuse a directory that holds another id (a SHA-256 collision)."""
    try:
        stored = (path / _ID_FILE).read_bytes().decode()
    except FileNotFoundError:
        write_atomic(path / _ID_FILE, group_id.encode())
        return
    if stored != group_id:
        raise BrokerError(f"group directory {path} belongs to group {stored[:80]!r}..., "
                          f"not {group_id[:80]!r}...")


def _encode_offsets(offsets: Offsets) -> bytes:
    out: dict[str, dict[str, int]] = {}
    for (topic, partition), offset in sorted(offsets.items()):
        out.setdefault(topic, {})[str(partition)] = offset
    return json.dumps(out, sort_keys=True).encode()


def _decode_offsets(data: bytes) -> Offsets:
    return {TopicPartition(topic, int(p)): offset
            for topic, parts in json.loads(data).items() for p, offset in parts.items()}


def _try_flock(path: Path, create: bool = False) -> int | None:
    """An fd holding an exclusive flock on ``path``, or None if someone else holds it
    (or, without ``create``, the file is gone)."""
    try:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    return fd


class FileGroupStore:
    """One member's handle on a group directory (holds that member's flocks)."""

    def __init__(self, root: Path, group_id: str) -> None:
        self.path = root / group_dir_name(group_id)
        self._members = self.path / "members"
        self._owners = self.path / "owners"
        self._members.mkdir(parents=True, exist_ok=True)
        self._owners.mkdir(exist_ok=True)
        if self.path.name.startswith(_HASHED):
            _keep_group_id(self.path, group_id)
        self._lock_fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        self._lock_depth = 0
        self.directory = self.path
        self._member_fd = -1
        self._owned: dict[TopicPartition, int] = {}

    # -- membership ------------------------------------------------------------------
    def register(self, member_id: str) -> None:
        """Create our member file already locked (locked under a temp name, then
        renamed, so nobody ever sees it unlocked and mistakes us for dead)."""
        tmp = self._members / f".{member_id}.tmp"
        fd = _try_flock(tmp, create=True)
        assert fd is not None
        os.rename(tmp, self._members / member_id)
        self._member_fd = fd

    def heartbeat(self, member_id: str) -> None:
        os.utime(self._member_fd)

    def is_alive(self, member_id: str, session_timeout: float) -> bool:
        path = self._members / member_id
        fd = _try_flock(path)
        if fd is not None:             # nobody holds it: the process is gone
            os.close(fd)
            return False
        try:
            age = time.time() - os.stat(path).st_mtime
        except FileNotFoundError:
            return False
        return age <= session_timeout

    def forget(self, member_id: str) -> None:
        """Remove a dead member's file (under the group lock)."""
        try:
            os.unlink(self._members / member_id)
        except FileNotFoundError:
            pass

    def unregister(self, member_id: str) -> None:
        self.forget(member_id)
        if self._member_fd >= 0:
            os.close(self._member_fd)
            self._member_fd = -1

    # -- state -------------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """The group lock; taken again inside (``write_offsets`` in a transaction's
        commit), it is let go of by the outermost only."""
        self._lock_depth += 1
        if self._lock_depth == 1:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def state_version(self) -> object:
        try:
            st = os.stat(self.path / "state.json")
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    def read_state(self) -> GroupState:
        try:
            state: GroupState = json.loads((self.path / "state.json").read_bytes())
        except FileNotFoundError:
            return _empty_state()
        return state

    def write_state(self, state: GroupState) -> None:
        write_atomic(self.path / "state.json", json.dumps(state, sort_keys=True).encode(),
                     fsync=False)

    # -- partition ownership -----------------------------------------------------------
    def acquire(self, tp: TopicPartition, member_id: str) -> bool:
        if tp in self._owned:
            return True
        fd = _try_flock(self._owners / _owner_file_name(tp), create=True)
        if fd is None:
            return False
        os.ftruncate(fd, 0)
        os.write(fd, member_id.encode())
        self._owned[tp] = fd
        return True

    def owner(self, tp: TopicPartition) -> str | None:
        try:
            holder = (self._owners / _owner_file_name(tp)).read_bytes().decode()
        except FileNotFoundError:
            return None
        return holder or None

    def take_over(self, tp: TopicPartition, member_id: str) -> None:
        """Lock a new owner file under a temporary name and rename it over the old
        one: the old holder keeps its flock on a file nobody opens again, and lets
        go of it when it learns it left the group (or dies)."""
        path = self._owners / _owner_file_name(tp)
        tmp = self._owners / f".{path.name}.{member_id}.tmp"
        fd = _try_flock(tmp, create=True)
        assert fd is not None          # (a name of our own)
        os.ftruncate(fd, 0)
        os.write(fd, member_id.encode())
        os.rename(tmp, path)
        self._owned[tp] = fd

    def release(self, tp: TopicPartition, member_id: str) -> None:
        fd = self._owned.pop(tp, None)
        if fd is not None:
            os.close(fd)

    # -- committed offsets ---------------------------------------------------------------
    def read_offsets(self) -> Offsets:
        return _read_offsets_in(self.path)

    def write_offsets(self, offsets: Offsets) -> None:
        """Merge ``offsets`` into the group's committed offsets, durably."""
        with self.locked():
            merged = self.read_offsets()
            merged.update(offsets)
            write_atomic(self.path / "offsets.json", _encode_offsets(merged))

    def __del__(self) -> None:
        # a member dropped without close(): give its flocks back with its fds
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def close(self) -> None:
        for tp in list(self._owned):
            self.release(tp, "")
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
        if self._member_fd >= 0:
            os.close(self._member_fd)
            self._member_fd = -1


class MemoryGroup:
    """A group's state held in memory, shared by every member in this process."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.state: GroupState = _empty_state()
        self.version = 0
        self.heartbeats: dict[str, float] = {}
        self.stores: weakref.WeakValueDictionary[str, MemoryGroupStore] = \
            weakref.WeakValueDictionary()
        self.owners: dict[TopicPartition, str] = {}
        self.offsets: Offsets = {}


class MemoryGroupStore:
    """A member's handle on a ``MemoryGroup``. A member is alive while its handle is
    open (not closed, not garbage collected): the in-memory twin of holding a flock."""

    def __init__(self, group: MemoryGroup) -> None:
        self.group = group
        self.closed = False

    @property
    def directory(self) -> None:
        return None

    def _open(self, member_id: str) -> bool:
        store = self.group.stores.get(member_id)
        return store is not None and not store.closed

    def register(self, member_id: str) -> None:
        self.group.stores[member_id] = self
        self.group.heartbeats[member_id] = time.monotonic()

    def heartbeat(self, member_id: str) -> None:
        self.group.heartbeats[member_id] = time.monotonic()

    def is_alive(self, member_id: str, session_timeout: float) -> bool:
        seen = self.group.heartbeats.get(member_id)
        return self._open(member_id) and seen is not None and \
            time.monotonic() - seen <= session_timeout

    def forget(self, member_id: str) -> None:
        self.group.heartbeats.pop(member_id, None)

    def unregister(self, member_id: str) -> None:
        self.forget(member_id)
        self.group.stores.pop(member_id, None)

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self.group.lock:
            yield

    def state_version(self) -> object:
        return self.group.version

    def read_state(self) -> GroupState:
        state: GroupState = json.loads(json.dumps(self.group.state))
        return state

    def write_state(self, state: GroupState) -> None:
        self.group.state = json.loads(json.dumps(state))
        self.group.version += 1

    def acquire(self, tp: TopicPartition, member_id: str) -> bool:
        with self.group.lock:
            owner = self.group.owners.get(tp)
            if owner is not None and owner != member_id and self._open(owner):
                return False
            self.group.owners[tp] = member_id
            return True

    def release(self, tp: TopicPartition, member_id: str) -> None:
        with self.group.lock:
            if self.group.owners.get(tp) == member_id:
                del self.group.owners[tp]

    def owner(self, tp: TopicPartition) -> str | None:
        return self.group.owners.get(tp)

    def take_over(self, tp: TopicPartition, member_id: str) -> None:
        with self.group.lock:
            self.group.owners[tp] = member_id

    def read_offsets(self) -> Offsets:
        return dict(self.group.offsets)

    def write_offsets(self, offsets: Offsets) -> None:
        with self.group.lock:
            self.group.offsets.update(offsets)

    def close(self) -> None:
        self.closed = True


def file_read_offsets(root: Path, group_id: str) -> Offsets:
    """The committed offsets of group ``group_id`` under ``root``, read without joining
    or locking it (``offsets.json`` is replaced whole, atomically) and without creating
    any file: a read-only log can be listed."""
    return _read_offsets_in(root / group_dir_name(group_id))


def _read_offsets_in(group_dir: Path) -> Offsets:
    try:
        return _decode_offsets((group_dir / "offsets.json").read_bytes())
    except FileNotFoundError:
        return {}


def file_list_groups(root: Path) -> list[str]:
    """The ids of the groups under ``root``, sorted (hashed directories are read for
    their real id; one whose id is not written yet is still being created)."""
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    ids = []
    for name in names:
        path = root / name
        if not path.is_dir():
            continue
        if not name.startswith(_HASHED):
            ids.append(unquote(name))
            continue
        try:
            ids.append((path / _ID_FILE).read_bytes().decode())
        except FileNotFoundError:
            continue
    return sorted(ids)


def file_delete_group(root: Path, group_id: str) -> None:
    """Remove the group's directory (its offsets and state) if it exists."""
    shutil.rmtree(root / group_dir_name(group_id), ignore_errors=True)
