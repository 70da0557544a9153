"""``streamkit log check`` and ``streamkit log repair``: the embedded log's files.

``check`` only reads (it works on a read-only copy of a log too). ``repair`` is the one
way to remove damaged bytes from a partition, and it keeps them: see
``streamkit.transport.embedded``, the one way this layer reaches the log's files.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import click

from streamkit.cli.broker_commands import broker_options
from streamkit.cli.output import echo_table
from streamkit.errors import CorruptLog

if TYPE_CHECKING:
    from streamkit.transport.embedded import Damage, LogFiles


def _storage(broker: str, datadir: str) -> LogFiles:
    """The files of the embedded log ``--broker``/``--datadir`` name; a clear error if
    that is not a log:// URL or nothing is there."""
    from streamkit.transport.embedded import log_root, open_log_files
    if not broker.startswith("log://"):
        raise click.ClickException(
            f"{broker}: `streamkit log` works on the embedded log's files (log://); a "
            "memory:// log lives inside one process, and Kafka keeps its own files")
    root = log_root(broker, datadir)
    if not root.is_dir():
        raise click.ClickException(f"no embedded log at {root} (check --broker and "
                                   "--datadir)")
    return open_log_files(root)


def _row(item: Damage) -> tuple[object, ...]:
    """One row of the damage table."""
    kind = "incomplete write" if item.torn else "damage"
    return (item.topic, item.partition, item.segment, f"{item.start}-{item.end}",
            item.offsets, kind, item.problem)


@click.group("log")
def log_group() -> None:
    """Check and repair the embedded log's files (log:// only)."""


@log_group.command("check")
@click.argument("topic", required=False)
@broker_options
def check(topic: str | None, broker: str, datadir: str) -> None:
    """Read every batch of every segment of TOPIC (all topics if none) and report
    damage by topic, partition, offsets and byte range. Exits 1 if there is any."""
    from streamkit.transport.embedded import QUARANTINE, check_partition, topic_partitions
    storage = _storage(broker, datadir)
    rows: list[tuple[object, ...]] = []
    totals = [0, 0, 0, 0]
    damaged = torn = 0
    for name in [topic] if topic else storage.list_topics() + storage.orphan_topics():
        try:
            storage.read_topic(name)
        except CorruptLog as exc:
            damaged += 1
            rows.append((name, None, "topic.json", None, None, "damage", str(exc)))
        for partition in topic_partitions(storage, name):
            report = check_partition(storage, name, partition)
            totals = [totals[0] + 1, totals[1] + report.segments,
                      totals[2] + report.batches, totals[3] + report.records]
            for item in report.damage:
                torn += item.torn
                damaged += not item.torn
                rows.append(_row(item))
    if rows:
        echo_table(["topic", "partition", "segment", "bytes", "offsets", "kind",
                    "problem"], rows, title=f"Found in {storage.root}")
    click.echo(f"checked {totals[0]} partitions, {totals[1]} segments, {totals[2]} "
               f"batches, {totals[3]} records: "
               + (f"{damaged} damaged" if damaged else "no damage")
               + (f", {torn} incomplete write(s) (the next append cuts them)"
                  if torn else ""))
    if damaged:
        click.echo(f"`streamkit log repair TOPIC --partition P` moves damage aside into "
                   f"{storage.root / QUARANTINE}", err=True)
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
    from streamkit.transport.embedded import (check_partition, rebuild_topic_meta,
                                              repair_partition, topic_partitions)
    storage = _storage(broker, datadir)
    chosen = list(partitions) or topic_partitions(storage, topic)
    found = [d for p in chosen for d in check_partition(storage, topic, p).damage]
    damage = [d for d in found if not d.torn]
    meta_damaged = False
    try:
        storage.read_topic(topic)
    except CorruptLog as exc:
        meta_damaged = True
        click.echo(f"topic.json: {exc}")
    if not damage and not meta_damaged:
        click.echo(f"{topic}: no damage in partitions {chosen}; nothing to repair"
                   + (" (an incomplete write is cut by the next append)" if found else ""))
        return
    for item in damage:
        click.echo(f"{topic}[{item.partition}] {item.segment} bytes {item.start}-{item.end} "
                   f"(offsets {item.offsets}): {item.problem}")
    if not yes:
        click.confirm("Move these ranges into the quarantine and rewrite the segments?",
                      abort=True)
    if meta_damaged:
        count, config = rebuild_topic_meta(storage, topic)
        click.echo(f"{topic}: rebuilt topic.json with {count} partitions and config "
                   f"{config}; set the rest of its config again with `streamkit topics "
                   f"alter {topic} --config KEY=VALUE`")
    from streamkit.cli.main import setup_logging
    setup_logging("warning")          # each move is logged, with where the bytes went
    for partition in sorted({d.partition for d in damage}):
        repair_partition(storage, topic, partition)
    if damage:
        click.echo(f"{topic}: repaired; readers skip offsets "
                   f"{', '.join(d.offsets for d in damage)}, and no offset is reused")


COMMANDS: list[click.Command] = [log_group]
