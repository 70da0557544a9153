"""Where the log's bytes live: a directory tree (log://), or this process's memory
(memory://, in ``streamkit.log.memory``). Both give the same small set of operations, so
every rule of the log (offsets, segments, retention, compaction, groups) is written
once, above them.

On disk::

    <root>/<topic>/topic.json                 {"partitions": N, "config": {...}}
    <root>/<topic>/topic.lock                 flock'd while topic.json is rewritten
    <root>/<topic>/<partition>/<base>.log     segments (20-digit base offset)
    <root>/<topic>/<partition>/lock           flock'd by a process appending
    <root>/<topic>/<partition>/synced         flock'd to fsync; holds "fsynced up to"
    <root>/<topic>/<partition>/cleaned        offset the last compaction cleaned up to
    <root>/<topic>/<partition>/rolled         "<segment base> <ms>" of the last roll
    <root>/<topic>/<partition>/recovery-point where the last completed write ended
    <root>/<topic>/<partition>/transactions   open and aborted transactions (txnindex)
    <root>/__consumer_groups/<group>/...      consumer groups (streamkit.log.groups)
    <root>/__transactions/<id>/...            transactional ids (streamkit.log.transactions)
    <root>/__quarantine/<topic>/<partition>/  byte ranges ``streamkit log repair`` moved
                                              out of segments (never deleted by streamkit)

The recovery point is what separates a torn tail from corruption: every append writes it
(under the partition lock) after its ``write(2)`` returned, so bytes before it were
written completely, and only bytes after it may be an interrupted write. It also records
the boot of the machine it was written in: after a restart of the machine, bytes that
were never fsynced may be gone or garbage, and only the fsynced mark still holds.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import struct
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import NamedTuple, Protocol

from streamkit.errors import CorruptLog, InvalidConfig, TopicExists, UnknownTopic
from streamkit.log.config import RESERVED_NAMES
from streamkit.log.segment import FileHandle, Handle, segment_name

_SYNCED = struct.Struct("<qq")
_RECOVERY = struct.Struct("<4sqqq16s")
_RECOVERY_MAGIC = b"SKR1"
_RECOVERY_SIZE = _RECOVERY.size + 4          # + crc32 of the fields
#: a partition's transaction index (``streamkit.log.txnindex``)
TRANSACTIONS = "transactions"


class RecoveryPoint(NamedTuple):
    """Where the last completed append to a partition ended.

    ``base``: the segment it went to; ``end``: the byte after it in that segment;
    ``next_offset``: the offset the next record gets; ``boot``: the boot id of the
    machine when it was written (see ``boot_id``)."""

    base: int
    end: int
    next_offset: int
    boot: bytes

    def encode(self) -> bytes:
        data = _RECOVERY.pack(_RECOVERY_MAGIC, self.base, self.end, self.next_offset,
                              self.boot)
        return data + struct.pack("<I", zlib.crc32(data))

    @classmethod
    def decode(cls, data: bytes) -> RecoveryPoint | None:
        """The point in ``data``, or None if it is missing, short or damaged."""
        if len(data) < _RECOVERY_SIZE:
            return None
        body = data[:_RECOVERY.size]
        if struct.unpack_from("<I", data, _RECOVERY.size)[0] != zlib.crc32(body):
            return None
        magic, base, end, next_offset, boot = _RECOVERY.unpack(body)
        if magic != _RECOVERY_MAGIC:
            return None
        return cls(base, end, next_offset, boot)


_BOOT_ID: bytes | None = None


def boot_id() -> bytes:
    """16 bytes that change when the machine restarts (Linux's boot id); all zeros where
    the system does not say, which makes every restart look like the same boot (the
    strict reading: unsynced bytes that are damaged are then reported, not removed)."""
    global _BOOT_ID
    if _BOOT_ID is None:
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                _BOOT_ID = uuid.UUID(f.read().strip()).bytes
        except (OSError, ValueError):
            _BOOT_ID = bytes(16)
    return _BOOT_ID


def write_atomic(path: Path, data: bytes, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new bytes, never
    half (temp file + rename). A failed write (a full disk) leaves no temp file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def fsync_dir(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_partition_increase(name: str, partitions: int, count: int) -> None:
    """Raise InvalidConfig unless ``count`` is more partitions than ``partitions``
    (a topic's partitions can be added, never removed: their records would go)."""
    if count == partitions:
        raise InvalidConfig(f"topic {name!r} already has {partitions} partitions")
    if count < partitions:
        raise InvalidConfig(f"topic {name!r} has {partitions} partitions, more than the "
                            f"{count} asked for: partitions cannot be removed")


class PartitionStore(Protocol):
    """Where the segments of one partition live, and what is kept beside them: the
    locks, the fsynced mark, the recovery point, the last compaction and roll.
    ``FilePartitionStore`` (log://) and ``MemoryPartitionStore`` (memory://) are the
    two; ``Partition`` holds every rule of the log on top of either."""

    def version(self) -> object:
        """Changes when segments are created, replaced or deleted (or the topic is
        recreated). Raises FileNotFoundError once the partition is gone."""
        ...

    def segment_bases(self) -> list[int]:
        """The base offsets of the segments, sorted."""
        ...

    def open(self, base: int) -> Handle | None:
        """The segment starting at ``base``, or None if it is gone."""
        ...

    def identity(self, base: int) -> object:
        """Changes when the segment is replaced (None if it is gone)."""
        ...

    def exists(self, base: int) -> bool: ...
    def create(self, base: int) -> Handle: ...

    def replace(self, base: int, data: bytes) -> None:
        """Swap the segment's bytes for ``data`` at once (readers see old or new)."""
        ...

    def delete(self, base: int) -> None: ...

    def lock(self) -> AbstractContextManager[None]:
        """Exclusive across processes: held while appending or cleaning."""
        ...

    def sync_lock(self) -> AbstractContextManager[tuple[int, int]]:
        """Held while fsyncing; yields the (segment base, byte) already fsynced."""
        ...

    def set_synced(self, mark: tuple[int, int]) -> None: ...
    def read_synced(self) -> tuple[int, int]: ...
    def read_recovery(self) -> RecoveryPoint | None: ...
    def write_recovery(self, point: RecoveryPoint) -> None: ...
    def read_cleaned(self) -> int: ...
    def write_cleaned(self, offset: int) -> None: ...
    def read_rolled(self) -> tuple[int, int] | None: ...
    def write_rolled(self, rolled: tuple[int, int]) -> None: ...

    def open_transactions(self, create: bool) -> Handle | None:
        """The partition's transaction index (``streamkit.log.txnindex``); None if it
        has none and ``create`` is false."""
        ...

    def replace_transactions(self, data: bytes) -> None:
        """Replace the transaction index whole (under ``lock``)."""
        ...

    def has_transactions(self) -> bool:
        """True if the partition has a transaction index."""
        ...

    def close(self) -> None: ...


class FilePartitionStore:
    """The segment files of one partition directory, and its two locks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._dir = str(path)
        self._lock_fd = -1
        self._sync_fd = -1
        self._recovery_fd = -1
        self._recovery_read_fd = -1
        #: the bytes of the recovery point last read or written here, and the point:
        #: the same bytes read again need no decoding (nor their CRC)
        self._recovery_seen: tuple[bytes, RecoveryPoint] | None = None

    def version(self) -> tuple[int, int]:
        """Changes when segments are created, replaced or deleted (or the topic is
        recreated). Raises FileNotFoundError once the partition is gone."""
        st = os.stat(self._dir)
        return st.st_ino, st.st_mtime_ns

    def segment_bases(self) -> list[int]:
        return sorted(int(n[:-4]) for n in os.listdir(self._dir)
                      if n.endswith(".log") and n[:-4].isdigit())

    def open(self, base: int) -> Handle | None:
        try:
            return FileHandle(os.path.join(self._dir, segment_name(base)))
        except FileNotFoundError:
            return None

    def identity(self, base: int) -> object:
        try:
            return os.stat(os.path.join(self._dir, segment_name(base))).st_ino
        except FileNotFoundError:
            return None

    def exists(self, base: int) -> bool:
        return os.path.exists(os.path.join(self._dir, segment_name(base)))

    def create(self, base: int) -> Handle:
        handle = FileHandle(os.path.join(self._dir, segment_name(base)), create=True)
        fsync_dir(self._dir)
        return handle

    def replace(self, base: int, data: bytes) -> None:
        write_atomic(self.path / segment_name(base), data)
        fsync_dir(self._dir)

    def delete(self, base: int) -> None:
        try:
            os.unlink(os.path.join(self._dir, segment_name(base)))
        except FileNotFoundError:
            pass

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive across processes: held while appending or cleaning."""
        if self._lock_fd < 0:
            self._lock_fd = os.open(os.path.join(self._dir, "lock"), os.O_RDWR | os.O_CREAT,
                                    0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextmanager
    def sync_lock(self) -> Iterator[tuple[int, int]]:
        """Held while fsyncing; yields the (segment base, byte) already fsynced."""
        if self._sync_fd < 0:
            self._sync_fd = os.open(os.path.join(self._dir, "synced"),
                                    os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._sync_fd, fcntl.LOCK_EX)
        try:
            raw = os.pread(self._sync_fd, _SYNCED.size, 0)
            synced: tuple[int, int] = _SYNCED.unpack(raw) if len(raw) == _SYNCED.size \
                else (-1, -1)
            yield synced
        finally:
            fcntl.flock(self._sync_fd, fcntl.LOCK_UN)

    def set_synced(self, mark: tuple[int, int]) -> None:
        """Record ``mark`` as fsynced (call inside ``sync_lock``)."""
        os.pwrite(self._sync_fd, _SYNCED.pack(*mark), 0)

    def read_synced(self) -> tuple[int, int]:
        """(segment base, byte) fsynced so far, read without the sync lock; (-1, -1)
        if nothing was ever fsynced."""
        try:
            raw = (self.path / "synced").read_bytes()[:_SYNCED.size]
        except FileNotFoundError:
            return (-1, -1)
        synced: tuple[int, int] = _SYNCED.unpack(raw) if len(raw) == _SYNCED.size \
            else (-1, -1)
        return synced

    def read_recovery(self) -> RecoveryPoint | None:
        """The recovery point, or None if there is none (a log written by an older
        streamkit) or it is damaged. A read that races a write sees a checksum
        mismatch and is retried."""
        if self._recovery_read_fd < 0:
            try:          # (read-only: a copy of a log on a read-only disk can be read)
                self._recovery_read_fd = os.open(
                    os.path.join(self._dir, "recovery-point"), os.O_RDONLY)
            except FileNotFoundError:
                return None
        for _ in range(3):
            raw = os.pread(self._recovery_read_fd, _RECOVERY_SIZE, 0)
            seen = self._recovery_seen
            if seen is not None and raw == seen[0]:
                return seen[1]
            point = RecoveryPoint.decode(raw)
            if point is not None:
                self._recovery_seen = (raw, point)
                return point
        return None

    def write_recovery(self, point: RecoveryPoint) -> None:
        """Record where the last completed append ended (under ``lock``). Not fsynced
        by itself: after a machine restart only the fsynced mark is trusted."""
        if self._recovery_fd < 0:
            self._recovery_fd = os.open(os.path.join(self._dir, "recovery-point"),
                                        os.O_RDWR | os.O_CREAT, 0o644)
        data = point.encode()
        os.pwrite(self._recovery_fd, data, 0)
        self._recovery_seen = (data, point)

    def read_cleaned(self) -> int:
        """Offset up to which the last compaction cleaned (0 if never)."""
        try:
            return int((self.path / "cleaned").read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def write_cleaned(self, offset: int) -> None:
        (self.path / "cleaned").write_text(str(offset))

    def read_rolled(self) -> tuple[int, int] | None:
        """(segment base, ms) of the last roll, or None."""
        try:
            base, at = (self.path / "rolled").read_text().split()
            return int(base), int(at)
        except (FileNotFoundError, ValueError):
            return None

    def write_rolled(self, rolled: tuple[int, int]) -> None:
        (self.path / "rolled").write_text(f"{rolled[0]} {rolled[1]}")

    def open_transactions(self, create: bool) -> Handle | None:
        path = os.path.join(self._dir, TRANSACTIONS)
        try:
            return FileHandle(path, create=create)
        except FileNotFoundError:
            return None

    def replace_transactions(self, data: bytes) -> None:
        write_atomic(self.path / TRANSACTIONS, data)
        fsync_dir(self._dir)

    def has_transactions(self) -> bool:
        return os.access(os.path.join(self._dir, TRANSACTIONS), os.F_OK)

    def close(self) -> None:
        for fd in (self._lock_fd, self._sync_fd, self._recovery_fd,
                   self._recovery_read_fd):
            if fd >= 0:
                os.close(fd)
        self._lock_fd = self._sync_fd = self._recovery_fd = self._recovery_read_fd = -1

    __del__ = close


class FileStorage:
    """Topics as directories under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = str(root)
        self.groups_root = root / "__consumer_groups"

    def ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def _meta_path(self, name: str) -> Path:
        return self.root / name / "topic.json"

    def read_topic(self, name: str) -> tuple[int, dict[str, str], object] | None:
        """(partitions, config, identity) of a topic, or None if it does not exist.
        Raises CorruptLog if its topic.json is damaged, or missing while partitions of
        it hold records (the topic is not re-created over them)."""
        path = self._meta_path(name)
        try:
            with open(path, "rb") as f:
                raw = f.read()
                ident = os.fstat(f.fileno()).st_ino
        except FileNotFoundError:
            held = self.partitions_with_data(name)
            if held:
                raise CorruptLog(
                    f"topic {name!r} has no {path} but partitions {held} of it hold "
                    f"records: it is not re-created over them; restore the file, or run "
                    f"`streamkit log repair {name}` to rebuild it") from None
            return None
        try:
            meta = json.loads(raw)
            partitions, config = meta["partitions"], meta["config"]
            if not isinstance(partitions, int) or partitions < 1 or \
                    not isinstance(config, dict):
                raise ValueError(f"partitions={partitions!r}, config={config!r}")
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptLog(f"topic {name!r}: {path} is damaged ({exc}); run "
                             f"`streamkit log repair {name}` to rebuild it") from None
        return partitions, config, ident

    def orphan_topics(self) -> list[str]:
        """Folders holding partitions with records but no topic.json (lost)."""
        try:
            entries = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        return [name for name in entries if name not in RESERVED_NAMES and
                not self._meta_path(name).exists() and self.partitions_with_data(name)]

    def partitions_with_data(self, name: str) -> list[int]:
        """Partitions of ``name`` whose directory holds records (or once did)."""
        try:
            entries = os.listdir(self.root / name)
        except (FileNotFoundError, NotADirectoryError):
            return []
        held = []
        for entry in sorted((e for e in entries if e.isdigit()), key=int):
            part = self.root / name / entry
            point = FilePartitionStore(part).read_recovery()
            if (point is not None and point.next_offset > 0) or any(
                    seg.stat().st_size > 0 for seg in part.glob("*.log")):
                held.append(int(entry))
        return held

    def topic_identity(self, name: str) -> object:
        try:       # (asked on every produce: the path without os.path.join's checks)
            return os.stat(f"{self._root}/{name}/topic.json").st_ino
        except FileNotFoundError:
            return None

    def create_topic(self, name: str, partitions: int, config: dict[str, str]) -> None:
        """Create the topic's directories, then publish topic.json last: a topic
        exists once its topic.json does. Raises TopicExists if it already does."""
        self.ensure_root()
        topic_dir = self.root / name
        try:
            topic_dir.mkdir()
        except FileExistsError:
            if self._wait_for_meta(name):
                raise TopicExists(f"topic {name!r} already exists") from None
            # a creator died half way: finish its work (unless records are there:
            # then topic.json was lost, and read_topic says so)
            self.read_topic(name)
        for p in range(partitions):
            self._make_partition(topic_dir / str(p))
        self.write_topic(name, partitions, config, replace=False)

    @staticmethod
    def _make_partition(part: Path) -> None:
        """A partition directory with an empty first segment; one left by an earlier
        attempt is kept as it is (segments in it are never replaced)."""
        part.mkdir(exist_ok=True)
        if not any(part.glob("*.log")):
            (part / segment_name(0)).touch()
        fsync_dir(part)

    @contextmanager
    def _topic_lock(self, name: str) -> Iterator[None]:
        """Exclusive across processes while ``name``'s topic.json is read and rewritten,
        so that two changes at once (partitions added, configs altered) do not undo each
        other. Raises UnknownTopic if the topic's directory is gone."""
        path = f"{self._root}/{name}/topic.lock"
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                raise UnknownTopic(f"topic {name!r} does not exist") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                # the topic may have been deleted (its directory moved away) while we
                # waited: the lock held is then on the old directory's file
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    break
            except FileNotFoundError:
                os.close(fd)
                raise UnknownTopic(f"topic {name!r} does not exist") from None
            os.close(fd)
        try:
            yield
        finally:
            os.close(fd)            # (releases the flock)

    def _locked_meta(self, name: str) -> tuple[int, dict[str, str]]:
        """(partitions, config) of ``name``, read under its topic lock."""
        meta = self.read_topic(name)
        if meta is None:
            raise UnknownTopic(f"topic {name!r} does not exist")
        return meta[0], meta[1]

    def add_partitions(self, name: str, count: int) -> int:
        """Grow ``name`` to ``count`` partitions; returns how many it had. The new
        partitions' directories are made first and topic.json is replaced last, so a
        crash in between leaves the topic as it was (the next attempt reuses the empty
        directories). Raises InvalidConfig unless ``count`` is more than it has."""
        with self._topic_lock(name):
            partitions, config = self._locked_meta(name)
            check_partition_increase(name, partitions, count)
            topic_dir = self.root / name
            for p in range(partitions, count):
                self._make_partition(topic_dir / str(p))
            self.write_topic(name, count, config, replace=True)
            return partitions

    def alter_config(self, name: str, change: Callable[[dict[str, str]], dict[str, str]]
                     ) -> None:
        """Replace ``name``'s config with ``change(config)``, read and written under
        the topic lock (its partitions are kept as they are then)."""
        with self._topic_lock(name):
            partitions, config = self._locked_meta(name)
            self.write_topic(name, partitions, change(config), replace=True)

    def write_topic(self, name: str, partitions: int, config: dict[str, str],
                    replace: bool) -> None:
        """Publish ``name``'s topic.json (fsynced). Without ``replace``, raise
        TopicExists if another creator published one first."""
        topic_dir = self.root / name
        data = json.dumps({"partitions": partitions, "config": config},
                          sort_keys=True).encode()
        tmp = topic_dir / f".topic.json.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if replace:
                os.replace(tmp, self._meta_path(name))
            else:
                os.link(tmp, self._meta_path(name))   # fails if another creator won
        except FileExistsError:
            raise TopicExists(f"topic {name!r} already exists") from None
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(topic_dir)
        fsync_dir(self.root)

    def _wait_for_meta(self, name: str, timeout: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._meta_path(name).exists():
                return True
            time.sleep(0.005)
        return self._meta_path(name).exists()

    def delete_topic(self, name: str) -> None:
        topic_dir = self.root / name
        if not self._meta_path(name).exists():
            raise UnknownTopic(f"topic {name!r} does not exist")
        trash = self.root / "__trash"
        trash.mkdir(exist_ok=True)
        # (a cut of the name: the whole of a 249-character one and the uuid would pass
        # the file system's 255-byte limit)
        target = trash / f"{name[:200]}.{uuid.uuid4().hex}"
        # under the topic lock: not while partitions are added or configs rewritten,
        # which would otherwise finish in a topic created again under the name
        with self._topic_lock(name):
            try:
                os.rename(topic_dir, target)     # atomic: the topic vanishes at once
            except FileNotFoundError:
                raise UnknownTopic(f"topic {name!r} does not exist") from None
        shutil.rmtree(target, ignore_errors=True)

    def list_topics(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if n not in RESERVED_NAMES
                      and (self.root / n / "topic.json").exists())

    def partition_store(self, name: str, partition: int) -> FilePartitionStore:
        return FilePartitionStore(self.root / name / str(partition))
