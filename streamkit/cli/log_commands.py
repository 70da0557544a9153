"""``streamkit log check`` and ``streamkit log repair``: the embedded log's files.

``check`` only reads. ``repair`` is the one way to remove damaged bytes from a
partition, and it keeps them: see ``streamkit.log.repair``.
"""
from __future__ import annotations

import click

from streamkit.cli.broker_commands import broker_options
from streamkit.cli.output import echo_table
from streamkit.errors import CorruptLog, UnknownTopic


def _storage(broker: str, datadir: str):
    from streamkit.log.broker import log_root
    from streamkit.log.storage import FileStorage
    if not broker.startswith("log://"):
        raise click.ClickException(f"{broker}: `streamkit log` checks the embedded log on "
                                   "disk (log://); Kafka keeps its own files")
    root = log_root(broker, datadir)
    if not root.is_dir():
        raise click.ClickException(f"no embedded log at {root} (check --broker and "
                                   "--datadir)")
    return FileStorage(root)


def _topics_on_disk(storage) -> list[str]:
    """Topics with a topic.json, and folders that hold partitions without one."""
    from streamkit.log.config import RESERVED_NAMES
    names = set(storage.list_topics())
    for entry in storage.root.iterdir():
        if entry.is_dir() and entry.name not in RESERVED_NAMES and \
                storage.partitions_with_data(entry.name):
            names.add(entry.name)
    return sorted(names)


def _partitions(storage, topic: str) -> list[int]:
    folder = storage.root / topic
    if not folder.is_dir():
        raise UnknownTopic(f"no topic {topic!r} in {storage.root}")
    return sorted(int(e.name) for e in folder.iterdir() if e.name.isdigit())


@click.group("log")
def log_group() -> None:
    """Check and repair the embedded log's files (log:// only)."""


@log_group.command("check")
@click.argument("topic", required=False)
@broker_options
def check(topic: str | None, broker: str, datadir: str) -> None:
    """Read every batch of every segment of TOPIC (all topics if none) and report
    damage by topic, partition, offsets and byte range. Exits 1 if there is any."""
    from streamkit.log.repair import check_partition
    storage = _storage(broker, datadir)
    rows: list[tuple[object, ...]] = []
    totals = [0, 0, 0, 0]
    damaged = 0
    for name in [topic] if topic else _topics_on_disk(storage):
        try:
            storage.read_topic(name)
        except CorruptLog as exc:
            damaged += 1
            rows.append((name, None, "topic.json", None, None, str(exc)))
        for partition in _partitions(storage, name):
            report = check_partition(storage, name, partition)
            totals = [totals[0] + 1, totals[1] + report.segments,
                      totals[2] + report.batches, totals[3] + report.records]
            for item in report.damage:
                damaged += not item.torn
                rows.append((name, partition, item.segment, f"{item.start}-{item.end}",
                             item.offsets, item.problem))
    if rows:
        echo_table(["topic", "partition", "segment", "bytes", "offsets", "problem"], rows,
                   title=f"Damage in {storage.root}")
    click.echo(f"checked {totals[0]} partitions, {totals[1]} segments, {totals[2]} batches, "
               f"{totals[3]} records: " + (f"{damaged} damaged" if damaged else "no damage"))
    if damaged:
        click.echo(f"`streamkit log repair TOPIC --partition P` moves damage aside into "
                   f"{storage.root / '__quarantine'}", err=True)
        raise SystemExit(1)


@log_group.command("repair")
@click.argument("topic")
@click.option("--partition", "-p", "partitions", type=int, multiple=True,
              help="Repair this partition (repeatable; default: every partition).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@broker_options
def repair(topic: str, partitions: tuple[int, ...], yes: bool, broker: str,
           datadir: str) -> None:
    """Move the damaged byte ranges of TOPIC into the quarantine folder (they are kept,
    never deleted) and rewrite its segments without them, keeping every offset unique;
    rebuild a lost topic.json. Stop the processes writing to TOPIC first."""
    from streamkit.log.repair import (
        check_partition,
        rebuild_topic_meta,
        repair_partition,
    )
    storage = _storage(broker, datadir)
    chosen = list(partitions) or _partitions(storage, topic)
    found = [d for p in chosen for d in check_partition(storage, topic, p).damage]
    meta_damaged = False
    try:
        storage.read_topic(topic)
    except CorruptLog as exc:
        meta_damaged = True
        click.echo(f"topic.json: {exc}")
    if not found and not meta_damaged:
        click.echo(f"{topic}: no damage in partitions {chosen}; nothing to repair")
        return
    for item in found:
        click.echo(f"{topic}[{item.partition}] {item.segment} bytes {item.start}-{item.end} "
                   f"(offsets {item.offsets}): {item.problem}")
    if not yes:
        click.confirm("Move these ranges into the quarantine and rewrite the segments?",
                      abort=True)
    if meta_damaged:
        count = rebuild_topic_meta(storage, topic)
        click.echo(f"{topic}: rebuilt topic.json with {count} partitions (retention off "
                   "until its config is set again)")
    from streamkit.cli.main import setup_logging
    setup_logging("warning")          # each move is logged, with where the bytes went
    for partition in sorted({d.partition for d in found}):
        repair_partition(storage, topic, partition)
    click.echo(f"{topic}: repaired; offsets {', '.join(d.offsets for d in found)} are "
               "skipped by readers" if found else f"{topic}: repaired")


COMMANDS: list[click.Command] = [log_group]
