"""Damage inside a partition: reported by topic, partition and offset, never cut away,
never read twice (findings 1-3 of the fault-injection review)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import streamkit
from streamkit.cli import cli
from streamkit.errors import CorruptRecord
from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition

from .logfiles import CRC_AT, LENGTH_AT, MAGIC_AT, batch_at, flip

TP = TopicPartition("t", 0)


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "log"


def _fill(root: Path, records: int, per_batch: int = 100, topic: str = "t") -> None:
    """``records`` acknowledged (acks=all) records in one partition, in batches."""
    broker = connect(f"log://{root}")
    broker.create_topic(topic, partitions=1)
    for start in range(0, records, per_batch):
        broker.produce(topic, [OutgoingRecord(None, b"r%d" % i, None, None, 0)
                               for i in range(start, min(start + per_batch, records))],
                       acks="all")
    broker.close()


def _consume_all(root: Path, max_poll_records: int = 500) -> tuple[list[int], Exception]:
    """Offsets a group consumer hands out, and the error that stops it."""
    consumer = streamkit.Consumer("t", broker=f"log://{root}", group_id="g",
                                  auto_offset_reset="earliest",
                                  max_poll_records=max_poll_records,
                                  consumer_timeout_ms=1000)
    offsets = []
    try:
        for message in consumer:
            assert message.value == b"r%d" % message.offset
            offsets.append(message.offset)
    except CorruptRecord as exc:
        return offsets, exc
    finally:
        consumer.close()
    raise AssertionError(f"read {len(offsets)} records and no error")


@pytest.mark.parametrize("field", [MAGIC_AT + 3, LENGTH_AT + 1, LENGTH_AT + 3],
                         ids=["magic", "length-low", "length-high"])
def test_a_damaged_header_in_the_active_segment_is_reported_and_nothing_is_cut(root, field):
    _fill(root, 1000)
    batch = batch_at(root, "t", 500)
    size = batch.path.stat().st_size
    flip(batch.path, batch.pos + field)
    damaged = batch.path.read_bytes()

    offsets, error = _consume_all(root)
    assert offsets == list(range(500))
    assert (error.topic, error.partition, error.offset) == ("t", 0, 500)

    producer = streamkit.Producer(broker=f"log://{root}", acks="all")
    with pytest.raises(CorruptRecord) as refused:
        producer.send("t", b"after", partition=0).get(timeout=5)
    producer.close()
    text = str(refused.value)
    assert "t[0]" in text and "appends are refused" in text
    assert "streamkit log repair t --partition 0" in text
    # nothing was truncated or rewritten, and no offset was handed out again
    assert batch.path.stat().st_size == size
    assert batch.path.read_bytes() == damaged


def test_a_crc_damaged_batch_inside_a_fetch_window_returns_each_offset_once(root):
    _fill(root, 1450, per_batch=25)
    batch = batch_at(root, "t", 700)
    flip(batch.path, batch.pos + batch.size - 2)        # inside the body
    broker = connect(f"log://{root}")
    window = broker.fetch(TP, 325, max_records=500)
    assert [m.offset for m in window] == list(range(325, 700))
    with pytest.raises(CorruptRecord) as info:
        broker.fetch(TP, 700, max_records=500)
    assert info.value.offset == 700
    # the records after the damaged batch are intact and readable past it
    after = broker.fetch(TP, batch.last + 1, max_records=5000)
    assert [m.offset for m in after] == list(range(batch.last + 1, 1450))
    broker.close()

    offsets, error = _consume_all(root)
    assert offsets == list(range(700))
    assert error.offset == 700


def test_a_damaged_crc_field_is_detected_like_a_damaged_body(root):
    _fill(root, 300)
    batch = batch_at(root, "t", 100)
    flip(batch.path, batch.pos + CRC_AT)
    broker = connect(f"log://{root}")
    assert len(broker.fetch(TP, 0, max_records=1000)) == 100
    with pytest.raises(CorruptRecord):
        broker.fetch(TP, 100)
    broker.close()


def test_records_before_damage_are_delivered_across_poll_sizes(root):
    _fill(root, 1000)
    batch = batch_at(root, "t", 700)
    flip(batch.path, batch.pos + batch.size - 3)
    for max_poll in (500, 333, 1000):
        consumer_offsets, error = _consume_all(root, max_poll)
        assert consumer_offsets == list(range(700)), max_poll
        assert error.offset == 700
        admin = streamkit.Admin(broker=f"log://{root}")
        admin.delete_group("g")
        admin.close()


def test_tail_prints_every_record_before_the_damage_then_names_it(root):
    _fill(root, 1000)
    batch = batch_at(root, "t", 700)
    flip(batch.path, batch.pos + batch.size - 3)
    result = CliRunner().invoke(cli, ["tail", "t", "--from-beginning", "--timeout", "1",
                                      "--format", "raw", "--broker", f"log://{root}"])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"r{i}" for i in range(700)]
    assert "t[0] at offset 700" in result.output


def test_a_worker_forwards_each_record_before_the_damage_once_then_stops(tmp_path):
    root = tmp_path / "log"
    _fill(root, 1450, per_batch=50, topic="src")
    batch = batch_at(root, "src", 700)
    flip(batch.path, batch.pos + batch.size - 3)
    app = Path(__file__).parent / "apps" / "forward.py"
    env = {"STREAMKIT_DATADIR": str(tmp_path), "STREAMKIT_BROKER": f"log://{root}",
           "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run([sys.executable, str(app), "worker"], env=env, cwd=tmp_path,
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "src[0] at offset 700" in done.stderr + done.stdout
    broker = connect(f"log://{root}")
    out = [m for p in range(broker.partition_count("out") or 0)
           for m in broker.fetch(TopicPartition("out", p), 0, max_records=10_000)]
    values = sorted(int(m.value[1:]) for m in out)
    assert values == list(range(700))                 # each once, none after the damage
    committed = {o.partition: o.committed for o in broker.group_offsets("forward")}
    assert committed.get(0, 0) <= 700
    broker.close()


def test_a_lost_newest_segment_refuses_appends_instead_of_reusing_its_offsets(root):
    broker = connect(f"log://{root}")
    broker.create_topic("t", partitions=1, config={"segment.bytes": 2000})
    for start in range(0, 300, 50):
        broker.produce("t", [OutgoingRecord(None, b"r%d" % i, None, None, 0)
                             for i in range(start, start + 50)])
    broker.close()
    files = sorted((root / "t" / "0").glob("*.log"))
    assert len(files) >= 2
    files[-1].unlink()                                  # the active segment is gone
    writer = connect(f"log://{root}")
    with pytest.raises(CorruptRecord) as info:
        writer.produce("t", [OutgoingRecord(None, b"x", None, None, 0)])
    assert "missing" in str(info.value)
    writer.close()


@pytest.mark.parametrize("group", [None, "g"], ids=["all partitions", "group member"])
def test_damage_in_one_partition_does_not_starve_the_others(root, group):
    broker = connect(f"log://{root}")
    broker.create_topic("t", partitions=2)
    for p in range(2):
        broker.produce("t", [OutgoingRecord(None, b"r%d" % i, None, None, p)
                             for i in range(300)])
    broker.close()
    batch = batch_at(root, "t", 0, partition=0)        # partition 0 is damaged at once
    flip(batch.path, batch.pos + MAGIC_AT)
    consumer = streamkit.Consumer("t", broker=f"log://{root}", group_id=group,
                                  auto_offset_reset="earliest", consumer_timeout_ms=1000)
    got = []
    with pytest.raises(CorruptRecord) as info:
        for message in consumer:
            got.append((message.partition, message.offset))
    consumer.close()
    assert got == [(1, i) for i in range(300)]          # all of the healthy partition
    assert (info.value.partition, info.value.offset) == (0, 0)


def test_a_damaged_first_batch_does_not_move_the_start_offset_or_a_group(root):
    from streamkit.log.repair import repair_partition
    from streamkit.log.storage import FileStorage
    _fill(root, 1500, per_batch=500)
    consumer = streamkit.Consumer("t", broker=f"log://{root}", group_id="g",
                                  auto_offset_reset="earliest")
    consumer.poll(timeout_ms=1000, max_records=200)
    consumer.commit()
    consumer.close()
    batch = batch_at(root, "t", 0)
    flip(batch.path, batch.pos + MAGIC_AT)
    broker = connect(f"log://{root}")
    assert broker.offsets(TP) == (0, 1500)           # not (1500, 1500): nothing skipped
    broker.close()
    offsets, error = _consume_all(root)
    assert offsets == [] and error.offset == 0          # stopped at the damage
    admin = streamkit.Admin(broker=f"log://{root}")
    assert [o.committed for o in admin.group_offsets("g")] == [200]
    admin.close()
    repair_partition(FileStorage(root), "t", 0)
    consumer = streamkit.Consumer("t", broker=f"log://{root}", group_id="g",
                                  auto_offset_reset="earliest", consumer_timeout_ms=1000)
    assert [m.offset for m in consumer] == list(range(500, 1500))
    consumer.close()
