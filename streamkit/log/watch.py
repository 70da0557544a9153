"""Waking a reader when records are appended: ``AppendWatch`` (decision 111).

A reader that has caught up waits for the next append to any partition it reads,
whichever process appends, instead of sleeping and looking again:

- ``log://`` on Linux: inotify. Every append ends by writing the partition's
  ``recovery-point`` file in place (``storage``: that is what makes its records
  readable), so a watch on that file fires exactly when records become readable, in any
  process, this one included. The kernel merges repeated modifications of one file that
  nobody has read yet into one event, so a busy reader that does not wait finds at most
  one event per partition queued. The partition's directory is watched too, for the
  ``recovery-point`` file being created (a partition never written) and for files being
  deleted (the topic deleted); the group's directory for a new ``state.json`` (a
  rebalance), so a waiting member follows the group at once.
- ``memory://``: a pipe in this process, written by every append
  (``MemoryPartitionStore.write_recovery``) to the watches of that partition.
- Elsewhere (no inotify, or the user's inotify limits reached): no descriptor; the
  reader looks again every ``POLL_SECONDS``.

No wake-up is lost as long as a reader keeps this order: ``clear()`` the watch, then
read the log, then wait. An append that ends after ``clear`` leaves an event behind;
one that ended before it is seen by the read. ``watch()`` returns True when it set up a
watch just now, and then the reader must read the log once more before waiting
(appends before the watch existed left no event).
"""
from __future__ import annotations

import ctypes
import errno
import logging
import math
import os
import select
import struct
import sys
import time
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Protocol

from streamkit.log.memory import MemoryPartitionStore, MemoryStorage
from streamkit.log.storage import FileStorage
from streamkit.types import TopicPartition

log = logging.getLogger("streamkit.log")

#: where no descriptor can tell: how often a waiting reader looks at the log again
POLL_SECONDS = 0.01
#: a partition that cannot be watched (its directory is missing: the topic was deleted)
#: is looked at this often, so a re-created topic is found
BLIND_SECONDS = 0.05
#: even with every partition watched, a reader looks at least this often: inotify does
#: not see writes made by another machine of a network file system
WATCHED_SECONDS = 1.0

_IN_MODIFY = 0x2
_IN_MOVED_TO = 0x80
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
_IN_ONLYDIR = 0x01000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
#: on the recovery-point file: every append writes it
_POINT_MASK = _IN_MODIFY | _IN_DELETE_SELF | _IN_MOVE_SELF
#: on a partition's directory: the recovery point created, files deleted (the topic is)
_PARTITION_MASK = _IN_CREATE | _IN_MOVED_TO | _IN_DELETE | _IN_DELETE_SELF | \
    _IN_MOVE_SELF | _IN_ONLYDIR
#: on a group's directory: a new state.json is renamed into place
_GROUP_MASK = _IN_MOVED_TO | _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_ONLYDIR
_EVENT = struct.Struct("iIII")      # wd, mask, cookie, length of the name after it
_POINT = "recovery-point"


class AppendWatch(Protocol):
    """Waits for appends to a set of partitions of one log."""

    def watch(self, tps: Collection[TopicPartition], group_dir: Path | None = None
              ) -> bool:
        """Watch exactly ``tps`` (and a group's directory, on disk). True if a watch
        was set up just now: read the log once more before waiting."""
        ...

    def fileno(self) -> int | None:
        """Readable once something was appended since the last ``clear``; None when
        this watch has no descriptor (look again after ``max_wait``)."""
        ...

    @property
    def max_wait(self) -> float:
        """The longest to wait without an event before reading the log again."""
        ...

    def wait(self, timeout: float) -> None:
        """Block until an event, ``timeout`` or ``max_wait``, whichever comes first."""
        ...

    def covers(self, tp: TopicPartition) -> bool:
        """Whether an append to ``tp`` surely shows in ``clear()``'s answer."""
        ...

    def clear(self) -> set[TopicPartition] | None:
        """Take the events: call before reading the log. Returns the partitions that
        were appended to (or whose files changed) since the last ``clear``, or None
        when this watch cannot tell which."""
        ...

    def close(self) -> None: ...


def open_append_watch(storage: FileStorage | MemoryStorage) -> AppendWatch:
    """The best watch the storage and the platform allow."""
    if isinstance(storage, MemoryStorage):
        return MemoryAppendWatch(storage)
    if _libc() is not None:
        try:
            return InotifyAppendWatch(storage.root)
        except OSError as exc:
            # e.g. EMFILE: fs.inotify.max_user_instances reached
            log.warning("cannot use inotify (%s): readers look for appends every "
                        "%.0f ms", exc, POLL_SECONDS * 1000)
    return PollingAppendWatch()


def _wait_readable(fd: int, timeout: float) -> None:
    """Block until ``fd`` is readable or ``timeout`` passed (poll(2): select(2) refuses
    descriptors past 1023, which a worker with many stores open reaches)."""
    if timeout > 0:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll(None if math.isinf(timeout) else math.ceil(timeout * 1000))


# -- inotify -----------------------------------------------------------------------------
_LIBC: list[ctypes.CDLL | None] = []


def _libc() -> ctypes.CDLL | None:
    """libc with the three inotify calls typed, or None off Linux."""
    if not _LIBC:
        _LIBC.append(None)
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                libc.inotify_init1.argtypes = [ctypes.c_int]
                libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p,
                                                   ctypes.c_uint32]
                libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
                _LIBC[0] = libc
            except (OSError, AttributeError):
                pass
    return _LIBC[0]


def _check(result: int) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


class InotifyAppendWatch:
    """inotify watches on the recovery points (and directories) of some partitions."""

    def __init__(self, root: Path) -> None:
        libc = _libc()
        assert libc is not None
        self._libc = libc
        self._root = root
        self._fd = _check(libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
        #: a forked child shares the parent's inotify queue: it opens its own
        self._pid = os.getpid()
        #: what is watched -> its watch descriptors (directory, recovery point)
        self._armed: dict[TopicPartition | Path, list[int]] = {}
        self._owner: dict[int, TopicPartition | Path] = {}
        #: watched things whose watches must be set up again
        self._stale: set[TopicPartition | Path] = set()
        self._blind = False
        self._warned = False

    def fileno(self) -> int:
        return self._fd

    @property
    def max_wait(self) -> float:
        return BLIND_SECONDS if self._blind else WATCHED_SECONDS

    def _after_fork(self) -> None:
        os.close(self._fd)                # (the child's copy: the parent keeps its own)
        self._fd = _check(self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
        self._pid = os.getpid()
        self._armed.clear()
        self._owner.clear()

    def watch(self, tps: Collection[TopicPartition], group_dir: Path | None = None
              ) -> bool:
        if self._pid != os.getpid():
            self._after_fork()
        wanted: set[TopicPartition | Path] = set(tps)
        if group_dir is not None:
            wanted.add(group_dir)
        if not self._stale and wanted == self._armed.keys():
            return False
        for what in [w for w in self._armed if w not in wanted or w in self._stale]:
            self._unwatch(what)
        self._stale.clear()
        added = False
        for what in wanted - self._armed.keys():
            wds = self._arm(what)
            if not wds:
                self._stale.add(what)        # no directory (yet): try at the next call
                continue
            self._armed[what] = wds
            for wd in wds:
                self._owner[wd] = what
            added = True
        self._blind = bool(self._stale)
        return added

    def _arm(self, what: TopicPartition | Path) -> list[int]:
        """Watch descriptors for ``what``; none if its directory is missing."""
        if isinstance(what, Path):
            return self._add(what, _GROUP_MASK, [])
        path = self._root / what.topic / str(what.partition)
        wds = self._add(path, _PARTITION_MASK, [])
        if wds and len(self._add(path / _POINT, _POINT_MASK, wds)) == 1 and \
                (path / _POINT).exists():
            # (a missing recovery point shows up as IN_CREATE; one that is there but
            # cannot be watched leaves the partition to be looked at)
            self._libc.inotify_rm_watch(self._fd, wds[0])
            return []
        return wds

    def _add(self, path: Path, mask: int, into: list[int]) -> list[int]:
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), mask)
        if wd >= 0:
            into.append(wd)
            return into
        code = ctypes.get_errno()
        if code not in (errno.ENOENT, errno.ENOTDIR) and not self._warned:
            # e.g. ENOSPC: fs.inotify.max_user_watches reached. Not fatal: what cannot
            # be watched is looked at every BLIND_SECONDS
            self._warned = True
            log.warning("cannot watch %s (%s): readers look for its appends every "
                        "%.0f ms", path, os.strerror(code), BLIND_SECONDS * 1000)
        return into

    def _unwatch(self, what: TopicPartition | Path) -> None:
        for wd in self._armed.pop(what, []):
            if self._owner.get(wd) == what:
                del self._owner[wd]
                self._libc.inotify_rm_watch(self._fd, wd)   # (EINVAL: already gone)

    def wait(self, timeout: float) -> None:
        _wait_readable(self._fd, min(timeout, self.max_wait))

    def covers(self, tp: TopicPartition) -> bool:
        return tp in self._armed

    def clear(self) -> set[TopicPartition] | None:
        if self._pid != os.getpid():
            self._after_fork()
            return None                       # (watch() sets the watches up again)
        touched: set[TopicPartition] | None = set()
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return touched
            if not self._note(data, touched):
                touched = None
            if len(data) < 32768:
                return touched

    def _note(self, data: bytes, touched: set[TopicPartition] | None) -> bool:
        """Add the partitions of the events in ``data`` to ``touched``, and mark what
        must be watched again: a watch the kernel dropped, a partition whose recovery
        point appeared or whose files were deleted. False if events were lost."""
        whole = True
        pos = 0
        size = _EVENT.size
        while pos + size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, pos)
            name = data[pos + size:pos + size + length].rstrip(b"\0")
            pos += size + length
            if mask & _IN_Q_OVERFLOW:
                whole = False                # (events were lost, wakes were not)
                continue
            what = self._owner.get(wd)
            if what is None:
                continue
            if touched is not None and isinstance(what, TopicPartition):
                touched.add(what)
            if mask & (_IN_IGNORED | _IN_DELETE_SELF | _IN_MOVE_SELF):
                self._stale.add(what)
            elif mask & (_IN_CREATE | _IN_MOVED_TO | _IN_DELETE) and \
                    name == b"recovery-point":
                self._stale.add(what)
            if mask & _IN_IGNORED:
                self._owner.pop(wd, None)
        return whole

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._armed.clear()
        self._owner.clear()

    def __del__(self) -> None:
        self.close()


# -- memory:// ---------------------------------------------------------------------------
class MemoryAppendWatch:
    """A pipe that the appends to the watched in-memory partitions write a byte to."""

    def __init__(self, storage: MemoryStorage) -> None:
        self._storage = storage
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._stores: dict[TopicPartition, MemoryPartitionStore] = {}

    def fileno(self) -> int:
        return self._read

    @property
    def max_wait(self) -> float:
        # (a rebalance of an in-memory group rings no bell: a member looks this often)
        return BLIND_SECONDS

    def ring(self) -> None:
        """Called by an append (in any thread of this process)."""
        try:
            os.write(self._write, b"\0")
        except (BlockingIOError, OSError):
            pass                         # full (a wake-up is pending anyway) or closed

    def watch(self, tps: Collection[TopicPartition], group_dir: Path | None = None
              ) -> bool:
        added = False
        for tp in [tp for tp in self._stores if tp not in tps]:
            self._stores.pop(tp).remove_bell(self)
        for tp in tps:
            entry = self._storage.topics.get(tp.topic)
            store = entry[2][tp.partition] if entry and tp.partition < entry[0] else None
            old = self._stores.get(tp)
            if store is old:
                continue
            if old is not None:
                old.remove_bell(self)
            if store is None:               # deleted: looked at every max_wait
                self._stores.pop(tp, None)
                continue
            store.add_bell(self)
            self._stores[tp] = store
            added = True
        return added

    def wait(self, timeout: float) -> None:
        _wait_readable(self._read, min(timeout, self.max_wait))

    def covers(self, tp: TopicPartition) -> bool:
        return False                     # (the bell does not say which partition)

    def clear(self) -> set[TopicPartition] | None:
        try:
            while len(os.read(self._read, 4096)) == 4096:
                pass
        except BlockingIOError:
            pass
        return None

    def close(self) -> None:
        for store in self._stores.values():
            store.remove_bell(self)
        self._stores.clear()
        if self._read >= 0:
            os.close(self._read)
            os.close(self._write)
            self._read = self._write = -1

    def __del__(self) -> None:
        self.close()


# -- no descriptor -----------------------------------------------------------------------
class PollingAppendWatch:
    """No notification available: a waiting reader looks every ``POLL_SECONDS``."""

    def fileno(self) -> None:
        return None

    @property
    def max_wait(self) -> float:
        return POLL_SECONDS

    def watch(self, tps: Iterable[TopicPartition], group_dir: Path | None = None
              ) -> bool:
        return False

    def wait(self, timeout: float) -> None:
        if timeout > 0:
            time.sleep(min(timeout, POLL_SECONDS))

    def covers(self, tp: TopicPartition) -> bool:
        return False

    def clear(self) -> set[TopicPartition] | None:
        return None

    def close(self) -> None:
        pass

