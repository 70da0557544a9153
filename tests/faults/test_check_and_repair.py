"""``streamkit log check`` and ``streamkit log repair``, and a topic whose topic.json is
lost (finding 8): damage is listed, moved aside (kept), never silently cut."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import streamkit
from streamkit.cli import cli
from streamkit.errors import CorruptLog, CorruptRecord
from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition

from .logfiles import LENGTH_AT, MAGIC_AT, batch_at, batches, flip, segments


def _fill(root: Path, records: int, partitions: int = 1, **config: object) -> None:
    broker = connect(f"log://{root}")
    broker.create_topic("t", partitions=partitions, config=config or None)
    for start in range(0, records, 50):
        for p in range(partitions):
            broker.produce("t", [OutgoingRecord(None, b"r%d" % i, None, None, p)
                                 for i in range(start, min(start + 50, records))])
    broker.close()


def _read(root: Path, partition: int = 0) -> list[int]:
    """Every readable offset, stepping over damage; values must match their offsets."""
    broker = connect(f"log://{root}")
    tp = TopicPartition("t", partition)
    offsets: list[int] = []
    position, end = 0, broker.offsets(tp)[1]
    while position < end:
        try:
            batch = broker.fetch(tp, position, 1000)
        except CorruptRecord:
            position += 1
            continue
        if not batch:
            break
        assert all(m.value == b"r%d" % m.offset for m in batch)
        offsets += [m.offset for m in batch]
        position = batch[-1].offset + 1
    broker.close()
    return offsets


def _run(root: Path, *args: str):
    return CliRunner().invoke(cli, [*args, "--broker", f"log://{root}"])


def test_check_lists_damage_by_topic_partition_offsets_and_bytes(tmp_path):
    root = tmp_path / "log"
    _fill(root, 1000, **{"segment.bytes": 3000})
    clean = _run(root, "log", "check")
    assert clean.exit_code == 0, clean.output
    assert "no damage" in clean.output
    closed = batch_at(root, "t", 120)
    flip(closed.path, closed.pos + MAGIC_AT + 1)
    active = batch_at(root, "t", 975)
    flip(active.path, active.pos + active.size - 4)
    result = _run(root, "log", "check", "t")
    assert result.exit_code == 1
    assert "2 damaged" in result.output
    assert f"{closed.first}-{closed.last}" in result.output           # offsets it hides
    assert f"{closed.pos}-{closed.pos + closed.size}" in result.output  # bytes
    assert f"{active.first}-{active.last}" in result.output
    assert "CRC mismatch" in result.output and "no batch header" in result.output


def test_repair_moves_damage_into_the_quarantine_and_keeps_offsets_unique(tmp_path):
    root = tmp_path / "log"
    _fill(root, 1000, **{"segment.bytes": 3000})
    closed = batch_at(root, "t", 120)
    active = batch_at(root, "t", 925)
    flip(closed.path, closed.pos + active.size // 2)
    flip(active.path, active.pos + LENGTH_AT + 1)       # the header chain breaks here
    damaged = {closed.path: closed.path.read_bytes()[closed.pos:closed.pos + closed.size]}
    producer = streamkit.Producer(broker=f"log://{root}")
    with pytest.raises(CorruptRecord):                   # appends are refused until repair
        producer.send("t", b"x").get(timeout=5)

    result = _run(root, "log", "repair", "t", "--partition", "0", "--yes")
    assert result.exit_code == 0, result.output
    kept = sorted((root / "__quarantine" / "t" / "0").glob("*.bin"))
    assert len(kept) == 2
    assert damaged[closed.path] in [k.read_bytes() for k in kept]
    description = json.loads(kept[0].with_suffix(".json").read_text())
    assert description["topic"] == "t" and description["partition"] == 0

    readable = _read(root)
    hidden = set(range(closed.first, closed.last + 1)) | set(range(active.first, active.last + 1))
    assert readable == [o for o in range(1000) if o not in hidden]
    assert producer.send("t", b"r1000").get(timeout=5).offset == 1000   # not reused
    producer.close()
    assert _run(root, "log", "check").exit_code == 0


def test_a_torn_write_is_listed_but_is_not_damage(tmp_path):
    root = tmp_path / "log"
    _fill(root, 100)
    seg = segments(root, "t")[-1]
    last = batches(seg)[-1]
    with open(seg, "ab") as f:                     # half a batch, never published
        f.write(seg.read_bytes()[last.pos:last.pos + last.size // 2])
    result = _run(root, "log", "check")
    assert result.exit_code == 0, result.output
    assert "never completed" in result.output and "no damage" in result.output


def test_a_lost_topic_json_is_refused_not_recreated_and_repair_rebuilds_it(tmp_path):
    root = tmp_path / "log"
    _fill(root, 200, partitions=3)
    (root / "t" / "topic.json").unlink()
    producer = streamkit.Producer(broker=f"log://{root}")
    with pytest.raises(CorruptLog) as info:
        producer.send("t", b"x").get(timeout=5)
    producer.close()
    assert "topic.json" in str(info.value) and "streamkit log repair t" in str(info.value)
    assert not (root / "t" / "topic.json").exists()       # not re-created with 1 partition

    assert _run(root, "log", "check").exit_code == 1
    result = _run(root, "log", "repair", "t", "--yes")
    assert result.exit_code == 0, result.output
    broker = connect(f"log://{root}")
    assert broker.partition_count("t") == 3
    assert broker.describe_topic("t").config["retention.ms"] == "-1"
    broker.close()
    for partition in range(3):
        assert _read(root, partition) == list(range(200))


def test_a_damaged_topic_json_gives_a_clear_error(tmp_path):
    root = tmp_path / "log"
    _fill(root, 10)
    (root / "t" / "topic.json").write_bytes(b'{"partitions": 1, "conf')
    broker = connect(f"log://{root}")
    with pytest.raises(CorruptLog) as info:
        broker.fetch(TopicPartition("t", 0), 0)
    assert "topic.json is damaged" in str(info.value)
    broker.close()


def test_a_rebuilt_changelog_stays_compacted_and_topics_alter_sets_the_rest(tmp_path):
    root = tmp_path / "log"
    broker = connect(f"log://{root}")
    broker.create_topic("app-counts-changelog", partitions=2,
                        config={"cleanup.policy": "compact", "segment.ms": "3600000"})
    broker.produce("app-counts-changelog", [OutgoingRecord(b"k", b"1")])
    broker.close()
    (root / "app-counts-changelog" / "topic.json").unlink()
    listing = CliRunner().invoke(cli, ["topics", "--broker", f"log://{root}"])
    assert "app-counts-changelog" in listing.output and "log repair" in listing.output
    assert _run(root, "log", "repair", "app-counts-changelog", "--yes").exit_code == 0
    alter = ["topics", "--broker", f"log://{root}", "alter", "app-counts-changelog"]
    assert CliRunner().invoke(cli, [*alter, "--config", "segment.ms=3600000"]).exit_code == 0
    broker = connect(f"log://{root}")
    config = broker.describe_topic("app-counts-changelog").config
    assert config["cleanup.policy"] == "compact" and config["segment.ms"] == "3600000"
    broker.close()
    refused = CliRunner().invoke(cli, [*alter, "--config", "x=1"])
    assert refused.exit_code == 1 and "unknown topic config" in refused.output
