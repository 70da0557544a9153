"""A write that fails part way (a full disk, here a file-size limit, which fails
``write(2)`` the same way), a restart of the machine that lost bytes never fsynced,
and a log an older streamkit wrote (no recovery point): only what was never
acknowledged is cut, with a warning that says why, no offset is handed out twice and
no temp file is left behind (finding 8)."""
from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from streamkit.errors import CorruptRecord
from streamkit.log.storage import FilePartitionStore
from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition

from .logfiles import MAGIC_AT, batch_at, flip, segments

TP = TopicPartition("t", 0)
REPO = Path(__file__).parents[2]


def _child(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python whose file writes fail past a size limit (EFBIG,
    as a full disk fails them with ENOSPC) instead of killing it."""
    prelude = textwrap.dedent("""
        import resource, signal, sys
        sys.path.insert(0, %r)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        def limit(size):
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    """ % str(REPO))
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          check=False, capture_output=True, text=True, timeout=60)


def _values(root: Path) -> list[bytes]:
    broker = connect(f"log://{root}")
    try:
        return [m.value for m in broker.fetch(TP, 0, 100_000)]
    finally:
        broker.close()


def test_a_write_cut_short_by_a_full_disk_is_cut_back_and_said_so(tmp_path):
    root = tmp_path / "log"
    done = _child(f"""
        from streamkit.transport import connect
        from streamkit.types import OutgoingRecord
        broker = connect("log://{root}")
        broker.create_topic("t", partitions=1)
        broker.produce("t", [OutgoingRecord(None, b"ok%d" % i) for i in range(100)])
        seg = sorted(__import__("pathlib").Path("{root}/t/0").glob("*.log"))[-1]
        limit(seg.stat().st_size + 1000)        # room for part of the next write only
        try:
            broker.produce("t", [OutgoingRecord(None, b"x" * 100) for i in range(100)])
        except OSError as exc:
            print("refused", exc.errno)
    """)
    assert "refused 27" in done.stdout, done.stderr          # EFBIG
    assert "failed" in done.stderr and "nothing of it was acknowledged" in done.stderr
    assert "never completed" not in done.stderr
    assert _values(root) == [b"ok%d" % i for i in range(100)]
    broker = connect(f"log://{root}")
    assert broker.produce("t", [OutgoingRecord(None, b"next")])[0].offset == 100
    broker.close()


def test_no_temp_file_is_left_when_writes_fail(tmp_path):
    root = tmp_path / "log"
    broker = connect(f"log://{root}")
    broker.create_topic("t", partitions=1)
    broker.produce("t", [OutgoingRecord(None, b"v")])
    broker.close()
    done = _child(f"""
        from streamkit.transport import connect
        from streamkit.types import TopicPartition
        broker = connect("log://{root}")
        member = broker.group_consumer("g", ["t"])
        member.poll(10, timeout=1)
        limit(8)                                # every new file write fails
        for attempt in (lambda: member.commit(),
                        lambda: broker.create_topic("u", partitions=2)):
            try:
                attempt()
            except OSError as exc:
                print("refused", exc.errno)
    """)
    assert done.stdout.count("refused 27") == 2, done.stdout + done.stderr
    leftovers = [p for p in root.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def _restart_lost(root: Path, lost: bytes) -> tuple[int, int]:
    """What a machine restart does to unsynced bytes: the last ``len(lost)`` bytes of
    the active segment become ``lost`` (garbage, zeros) while the recovery point, from
    the old boot, still counts them. Returns (records before, end offset before)."""
    broker = connect(f"log://{root}")
    broker.create_topic("t", partitions=1)
    for n in range(4):
        broker.produce("t", [OutgoingRecord(None, b"s%d-%d" % (n, i)) for i in range(10)],
                       acks="all" if n < 2 else 1)
    broker.close()
    store = FilePartitionStore(root / "t" / "0")
    point = store.read_recovery()
    assert point is not None and point.next_offset == 40
    store.write_recovery(point._replace(boot=b"an earlier boot."))
    seg = segments(root, "t")[-1]
    data = seg.read_bytes()
    seg.write_bytes(data[:len(data) - len(lost)] + lost)
    store.close()
    return 20, 40


def test_after_a_restart_unsynced_garbage_is_cut_and_its_offsets_skipped(tmp_path, caplog):
    root = tmp_path / "log"
    synced, end = _restart_lost(root, b"\0" * 300)     # acks=1 batches, zero-filled
    caplog.set_level(logging.WARNING, logger="streamkit.log")
    reader = connect(f"log://{root}")
    values = [m.value for m in reader.fetch(TP, 0, 1000)]
    assert values[:synced] == [b"s%d-%d" % (n, i) for n in range(2) for i in range(10)]
    assert all(v.startswith(b"s") for v in values)      # nothing changed, nothing invented
    assert any("machine restarted" in r.getMessage() for r in caplog.records)
    writer = connect(f"log://{root}")
    assert writer.produce("t", [OutgoingRecord(None, b"after")])[0].offset == end
    assert any("skipped, not reused" in r.getMessage() for r in caplog.records)
    assert [m.value for m in writer.fetch(TP, end, 10)] == [b"after"]
    writer.close()
    reader.close()


def test_after_a_restart_whole_unsynced_batches_are_kept(tmp_path, caplog):
    root = tmp_path / "log"
    _restart_lost(root, b"")                           # the page cache made it to disk
    caplog.set_level(logging.WARNING, logger="streamkit.log")
    assert _values(root) == [b"s%d-%d" % (n, i) for n in range(4) for i in range(10)]
    assert not [r for r in caplog.records if "cut" in r.getMessage()]
    broker = connect(f"log://{root}")
    assert broker.produce("t", [OutgoingRecord(None, b"after")])[0].offset == 40
    broker.close()


def _legacy(root: Path) -> Path:
    """A log as an older streamkit left it: no recovery point, nothing fsynced."""
    broker = connect(f"log://{root}")
    broker.create_topic("t", partitions=1)
    for n in range(4):
        broker.produce("t", [OutgoingRecord(None, b"s%d-%d" % (n, i)) for i in range(10)])
    broker.close()
    (root / "t" / "0" / "recovery-point").unlink()
    (root / "t" / "0" / "synced").unlink(missing_ok=True)
    return segments(root, "t")[-1]


def test_an_older_log_with_a_torn_tail_is_cut_there_only(tmp_path, caplog):
    root = tmp_path / "log"
    seg = _legacy(root)
    with open(seg, "ab") as f:
        f.write(seg.read_bytes()[:60])                # the start of a batch, cut short
    caplog.set_level(logging.WARNING, logger="streamkit.log")
    assert len(_values(root)) == 40
    assert any("without a recovery point" in r.getMessage() for r in caplog.records)


def test_an_older_log_with_damage_before_whole_batches_is_refused_not_cut(tmp_path):
    root = tmp_path / "log"
    seg = _legacy(root)
    size = seg.stat().st_size
    batch = batch_at(root, "t", 15)
    flip(batch.path, batch.pos + MAGIC_AT)
    broker = connect(f"log://{root}")
    with pytest.raises(CorruptRecord) as info:
        broker.produce("t", [OutgoingRecord(None, b"x")])
    assert info.value.offset == 10
    assert seg.stat().st_size == size
    broker.close()


def test_a_cleanup_that_fails_on_a_full_disk_does_not_fail_the_append(tmp_path):
    # the append rolls the segment, which starts compaction; compaction's temp file
    # cannot be written, but the append's records are in the log and acknowledged
    root = tmp_path / "log"
    done = _child(f"""
        from streamkit.transport import connect
        from streamkit.types import OutgoingRecord
        broker = connect("log://{root}")
        broker.create_topic("t", partitions=1, config={{
            "segment.bytes": "3000", "cleanup.policy": "compact",
            "min.cleanable.dirty.ratio": "0.01"}})
        for i in range(6):
            broker.produce("t", [OutgoingRecord(b"k%d" % j, b"v" * 50) for j in range(20)])
        limit(200)                          # room for the append, not for compaction
        print("produced", broker.produce("t", [OutgoingRecord(b"new", b"x")])[0].offset)
    """)
    assert "produced 120" in done.stdout, done.stdout + done.stderr
    assert "cleanup of t[0] failed" in done.stderr
    assert [p for p in root.rglob("*") if p.name.endswith(".tmp")] == []
    broker = connect(f"log://{root}")
    assert broker.fetch(TP, 120, 10)[0].value == b"x"
    broker.close()


def test_the_fsynced_mark_never_claims_bytes_a_cut_or_a_repair_removed(tmp_path):
    from streamkit.log.repair import repair_partition
    from streamkit.log.storage import FileStorage
    root = tmp_path / "log"
    broker = connect(f"log://{root}")
    broker.create_topic("t", partitions=1)
    for _ in range(3):
        broker.produce("t", [OutgoingRecord(None, b"x" * 10) for _ in range(500)],
                       acks="all")
    broker.close()
    seg = segments(root, "t")[-1]
    store = FilePartitionStore(root / "t" / "0")
    assert store.read_synced() == (0, seg.stat().st_size)
    flip(seg, batch_at(root, "t", 600).pos + MAGIC_AT)     # the middle batch
    repair_partition(FileStorage(root), "t", 0)              # the segment gets shorter
    assert store.read_synced()[1] <= seg.stat().st_size
    # and an acks=all append after it is fsynced, so the mark covers it
    broker = connect(f"log://{root}")
    broker.produce("t", [OutgoingRecord(None, b"after")], acks="all")
    broker.close()
    assert store.read_synced() == (0, seg.stat().st_size)
    store.close()
