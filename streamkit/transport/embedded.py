"""The embedded log's files, for tools that work on them rather than through a broker.

Where a ``log://`` URL keeps its files, opening them without starting a broker, the
partitions a topic has on disk, and checking and repairing one partition: what
``streamkit log check|repair``, ``streamkit reset`` and the read-only commands need.
The layers above ``transport`` (the command line) reach ``streamkit.log`` through this
module only, so the log's modules can change behind it.

``check_partition`` only reads (it works on a read-only copy of a log too).
``repair_partition`` is the one way to remove damaged bytes from a partition, and it
keeps them in the quarantine folder; see ``streamkit.log.repair`` and decision 109.
Stop the processes writing to a topic before repairing it.
"""
from __future__ import annotations

from pathlib import Path

from streamkit.errors import UnknownTopic
from streamkit.log import broker as _broker
from streamkit.log import repair as _repair
from streamkit.log.repair import QUARANTINE, Damage, PartitionReport
from streamkit.log.storage import FileStorage

__all__ = ["QUARANTINE", "Damage", "LogFiles", "PartitionReport", "check_partition",
           "log_root", "open_log_files", "rebuild_topic_meta", "repair_partition",
           "topic_partitions"]

#: the embedded log's files under one root directory: topics, partitions, segments
LogFiles = FileStorage


def log_root(url: str, datadir: str | Path) -> Path:
    """The directory a ``log://`` URL names: ``<datadir>/log`` for a bare ``log://``,
    else the path after the scheme (``log://rel/path``, ``log:///abs/path``). Nothing
    is created or read."""
    return _broker.log_root(url, datadir)


def open_log_files(root: Path) -> LogFiles:
    """The embedded log's files under ``root``, without a broker: no directory is
    created and no partition is recovered (a torn tail stays as it is on disk)."""
    return FileStorage(root)


def topic_partitions(files: LogFiles, topic: str) -> list[int]:
    """The partition numbers of ``topic`` that have a folder on disk, in order (the
    topic need not have a ``topic.json``: a lost one is what repair rebuilds).

    Raises ``UnknownTopic``, naming the topics there are, if it has none."""
    folder = files.root / topic
    numbers = sorted(int(e.name) for e in folder.iterdir() if e.name.isdigit()) \
        if folder.is_dir() else []
    if not numbers:
        raise UnknownTopic(f"no topic {topic!r} in {files.root} (topics: "
                           f"{', '.join(files.list_topics()) or 'none'})")
    return numbers


def check_partition(files: LogFiles, topic: str, partition: int) -> PartitionReport:
    """Read every batch of one partition and report its segments, batches, records and
    the byte ranges that are not whole batches: damage, and writes that never
    completed (``Damage.torn``: the next append cuts those). Changes nothing."""
    return _repair.check_partition(files, topic, partition)


def repair_partition(files: LogFiles, topic: str, partition: int
                     ) -> list[tuple[Damage, Path]]:
    """Move the damaged ranges of one partition into ``<root>/__quarantine`` and
    rewrite its segments without them, keeping every offset unique; returns each range
    moved and where its bytes went."""
    return _repair.repair_partition(files, topic, partition)


def rebuild_topic_meta(files: LogFiles, topic: str) -> tuple[int | None, dict[str, str]]:
    """Write a new ``topic.json`` for a topic whose file is lost or damaged; returns
    (partitions, config), or (None, {}) if the file is fine. The old config is lost:
    the rebuilt one deletes nothing until it is set again (``topics alter``)."""
    return _repair.rebuild_topic_meta(files, topic)
