"""Table stores on both backends: batched apply with its changelog offset, reads, clear,
persistence, the one-process lock and consistency after SIGKILL mid-write."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from streamkit.errors import ImproperlyConfigured, StoreLocked
from streamkit.tables.stores import MemoryStore, RocksDBStore, open_store

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["memory", "rocksdb"])
def store(request, tmp_path):
    s = open_store(f"{request.param}://", tmp_path / "tables", "counts", 4)
    yield s
    s.close()


def test_open_store_picks_the_backend_by_url(tmp_path: Path) -> None:
    assert isinstance(open_store("memory://", None, "t"), MemoryStore)
    rocks = open_store("rocksdb://", tmp_path / "app" / "tables", "t")
    try:
        assert isinstance(rocks, RocksDBStore)
        assert rocks.path == tmp_path / "app" / "tables" / "t.db"
        assert rocks.path.is_dir()
    finally:
        rocks.close()
    explicit = open_store(f"rocksdb://{tmp_path}/elsewhere", tmp_path / "ignored", "t")
    try:
        assert explicit.path == tmp_path / "elsewhere" / "t.db"
    finally:
        explicit.close()
    with pytest.raises(ImproperlyConfigured, match="unknown store URL 'redis://'"):
        open_store("redis://", tmp_path, "t")


def test_apply_writes_changes_and_offset(store) -> None:
    assert store.get(0, b"a") is None
    assert store.offset(0) is None
    store.apply(0, [b"a", b"b", b"c"], [b"1", b"2", b"3"], 10)
    store.apply(0, [b"a", b"c", b"missing"], [b"11", None, None], 12)
    assert store.get(0, b"a") == b"11"
    assert store.get(0, b"b") == b"2"
    assert store.get(0, b"c") is None
    assert store.offset(0) == 12
    assert sorted(store.items(0)) == [(b"a", b"11"), (b"b", b"2")]
    assert sorted(store.keys(0)) == [b"a", b"b"]
    assert store.size(0) in (2, 3)   # rocksdb's estimate may still count the delete


def test_partitions_are_independent(store) -> None:
    store.apply(0, [b"k"], [b"zero"], 5)
    store.apply(3, [b"k"], [b"three"], 7)
    assert store.get(0, b"k") == b"zero"
    assert store.get(3, b"k") == b"three"
    assert store.get(1, b"k") is None
    assert list(store.items(1)) == []
    assert (store.offset(0), store.offset(1), store.offset(3)) == (5, None, 7)
    assert store.partitions() == [0, 3]


def test_a_reader_looks_keys_up_in_its_partition(store) -> None:
    store.apply(0, [b"a"], [b"1"], 1)
    store.apply(1, [b"a"], [b"other"], 1)
    read = store.reader(0)
    assert (read(b"a"), read(b"missing")) == (b"1", None)
    store.apply(0, [b"b", b"a"], [b"2", None], 2)
    read = store.reader(0)
    assert (read(b"a"), read(b"b")) == (None, b"2")
    assert store.reader(5)(b"a") is None
    assert store.partitions() == [0, 1]


def test_apply_without_offset_keeps_the_offset(store) -> None:
    store.apply(2, [b"a"], [b"1"], 4)
    store.apply(2, [b"b"], [b"2"], None)
    assert store.offset(2) == 4
    assert store.get(2, b"b") == b"2"


def test_clear_drops_data_and_offset_of_one_partition(store) -> None:
    store.apply(0, [b"a"], [b"1"], 3)
    store.apply(1, [b"a"], [b"1"], 4)
    store.clear(0)
    assert store.get(0, b"a") is None
    assert list(store.items(0)) == []
    assert store.offset(0) is None
    assert store.size(0) == 0
    assert store.get(1, b"a") == b"1" and store.offset(1) == 4
    store.apply(0, [b"b"], [b"2"], 0)      # a cleared partition is usable again
    assert list(store.items(0)) == [(b"b", b"2")]
    store.clear(2)                         # clearing an unused partition is harmless
    assert store.offset(2) is None


def test_binary_keys_and_empty_values(store) -> None:
    keys = [b"", b"\x00", b"\xff" * 3, bytes(range(256))]
    store.apply(1, keys, [b""] * len(keys), 1)
    assert all(store.get(1, k) == b"" for k in keys)
    assert sorted(store.keys(1)) == sorted(keys)


def test_iterating_while_applying_sees_a_consistent_snapshot(store) -> None:
    store.apply(0, [b"%03d" % i for i in range(100)], [b"x"] * 100, 1)
    seen = []
    for key, _ in store.items(0):
        seen.append(key)
        if len(seen) == 1:
            store.apply(0, [b"%03d" % i for i in range(100)], [None] * 100, 2)
    assert len(seen) == 100
    assert list(store.items(0)) == []


def test_rocksdb_store_survives_close_and_reopen(tmp_path: Path) -> None:
    store = open_store("rocksdb://", tmp_path, "counts")
    store.apply(0, [b"a"], [b"1"], 10)
    store.apply(5, [b"b"], [b"2"], 20)
    store.clear(5)
    store.apply(5, [b"c"], [b"3"], 0)
    store.close()
    store.close()                          # idempotent
    again = open_store("rocksdb://", tmp_path, "counts")
    try:
        assert again.partitions() == [0, 5]
        assert again.get(0, b"a") == b"1" and again.offset(0) == 10
        assert list(again.items(5)) == [(b"c", b"3")] and again.offset(5) == 0
        assert again.size(0) == 1
    finally:
        again.close()


def test_a_clear_interrupted_by_a_crash_is_finished_on_open(tmp_path: Path) -> None:
    store = open_store("rocksdb://", tmp_path, "counts")
    store.apply(0, [b"stale"], [b"1"], 10)
    store.apply(1, [b"kept"], [b"2"], 11)
    # what clear() writes first, before dropping the data; then the process dies
    store._offsets_cf.delete(b"0")
    store._offsets_cf.put(b"clearing:0", b"")
    store.close()
    again = open_store("rocksdb://", tmp_path, "counts")
    try:
        assert list(again.items(0)) == [] and again.offset(0) is None
        assert again.get(1, b"kept") == b"2" and again.offset(1) == 11
    finally:
        again.close()
    third = open_store("rocksdb://", tmp_path, "counts")   # and the mark is gone
    try:
        assert third._unfinished_clears() == []
    finally:
        third.close()


def test_rocksdb_get_many(tmp_path: Path) -> None:
    store = open_store("rocksdb://", tmp_path, "t")
    try:
        store.apply(0, [b"a", b"c"], [b"1", b"3"], 1)
        assert store.get_many(0, [b"a", b"b", b"c"]) == [b"1", None, b"3"]
        assert store.get_many(9, [b"a"]) == [None]
    finally:
        store.close()


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_a_store_open_in_another_process_is_refused_until_it_dies(tmp_path: Path) -> None:
    holder = subprocess.Popen(_python(f"""
        import sys, time
        from streamkit.tables.stores import open_store
        store = open_store("rocksdb://", {str(tmp_path)!r}, "counts")
        store.apply(0, [b"a"], [b"1"], 1)
        print("open", flush=True)
        time.sleep(60)
        """), stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreLocked) as info:
            open_store("rocksdb://", tmp_path, "counts")
        message = str(info.value)
        assert str(tmp_path / "counts.db") in message
        assert f"another worker holds it (pid {holder.pid})" in message
        assert info.value.path == str(tmp_path / "counts.db")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    store = open_store("rocksdb://", tmp_path, "counts")   # the OS released the lock
    try:
        assert store.get(0, b"a") == b"1" and store.offset(0) == 1
    finally:
        store.close()


def test_a_second_open_in_the_same_process_is_refused(tmp_path: Path) -> None:
    store = open_store("rocksdb://", tmp_path, "counts")
    try:
        with pytest.raises(StoreLocked, match="this process already has it open"):
            open_store("rocksdb://", tmp_path, "counts")
    finally:
        store.close()


WRITER = """
    import sys
    from streamkit.tables.stores import open_store
    store = open_store("rocksdb://", sys.argv[1], "counts")
    first = store.offset(0)
    first = 0 if first is None else first + 1
    print(first, flush=True)
    n = first
    while True:
        # batch n: 200 fresh keys, the shared key 'last', and the delete of batch
        # n-1's key 0, then offset n: all or nothing.
        changes = [(b"b%d-k%d" % (n, j), b"%d" % n) for j in range(200)]
        changes.append((b"last", b"%d" % n))
        changes.append((b"b%d-k0" % (n - 1), None))
        store.apply(0, [k for k, _ in changes], [v for _, v in changes], n)
        if n == first + 20:
            print("going", flush=True)
        n += 1
"""


def _check_consistent(path: Path) -> int:
    store = open_store("rocksdb://", path, "counts")
    try:
        offset = store.offset(0)
        assert offset is not None
        data = dict(store.items(0))
        assert data[b"last"] == b"%d" % offset
        expected = {b"last": b"%d" % offset}
        for n in range(offset + 1):
            for j in range(200):
                if j == 0 and n < offset:
                    continue               # deleted by batch n + 1
                expected[b"b%d-k%d" % (n, j)] = b"%d" % n
        assert data == expected, (
            f"store at offset {offset}: {len(set(data) - set(expected))} keys from later "
            f"batches, {len(set(expected) - set(data))} keys of applied batches missing")
        return offset
    finally:
        store.close()


def test_sigkill_mid_write_leaves_data_and_offset_in_agreement(tmp_path: Path) -> None:
    offsets = []
    for round_ in range(3):
        writer = subprocess.Popen([*_python(WRITER), str(tmp_path)], stdout=subprocess.PIPE,
                                  text=True, env=_env())
        try:
            first = int(writer.stdout.readline())
            assert first == (offsets[-1] + 1 if offsets else 0)
            assert writer.stdout.readline().strip() == "going"
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        assert writer.returncode == -signal.SIGKILL
        offsets.append(_check_consistent(tmp_path))
    assert offsets[0] >= 20 and offsets == sorted(offsets)
