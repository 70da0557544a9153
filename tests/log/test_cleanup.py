"""Retention and compaction, observed the way a user sees them: through the Consumer."""
from __future__ import annotations

import time

import streamkit
from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition

TP = TopicPartition("t", 0)
HOUR = 3600 * 1000


def _read_all(url: str) -> list:
    consumer = streamkit.Consumer("t", broker=url, auto_offset_reset="earliest",
                                  consumer_timeout_ms=100)
    messages = list(consumer)
    consumer.close()
    return messages


def test_retention_ms_deletes_old_segments(url):
    admin = streamkit.Admin(broker=url)
    admin.create_topic("t", partitions=1, config={"retention.ms": HOUR})
    producer = streamkit.Producer(broker=url)
    old = int(time.time() * 1000) - 2 * HOUR
    for i in range(20):
        producer.send("t", value=b"old%d" % i, timestamp_ms=old + i)
    producer.flush()
    assert len(_read_all(url)) == 20
    admin.cleanup("t")          # rolls the active segment: all of it is now > 1 h old
    assert _read_all(url) == []
    for i in range(5):
        producer.send("t", value=b"new%d" % i)
    producer.flush()
    admin.cleanup("t")          # retention is by segment, by its newest timestamp
    messages = _read_all(url)
    assert [m.value for m in messages] == [b"new%d" % i for i in range(5)]
    assert [m.offset for m in messages] == list(range(20, 25))   # offsets never reused
    info = admin.describe_topic("t")
    assert info.start_offsets == [20] and info.end_offsets == [25]
    assert producer.send("t", value=b"next").get().offset == 25
    producer.close()


def test_retention_runs_in_the_background_when_a_writer_rolls(url):
    broker = connect(url)
    broker.create_topic("t", partitions=1, config={"retention.ms": HOUR,
                                                   "segment.bytes": 300})
    old = int(time.time() * 1000) - 2 * HOUR
    for i in range(20):
        broker.produce("t", [OutgoingRecord(None, b"old%d" % i, timestamp=old)])
    broker.produce("t", [OutgoingRecord(None, b"new")] * 30)
    values = [m.value for m in _read_all(url)]
    assert values == [b"new"] * 30


def test_retention_bytes_keeps_the_newest_segments(url):
    broker = connect(url)
    broker.create_topic("t", partitions=1, config={"retention.bytes": 1000,
                                                   "segment.bytes": 300})
    for i in range(40):
        broker.produce("t", [OutgoingRecord(None, b"v%03d" % i + b"." * 40)])
    broker.cleanup("t")
    messages = _read_all(url)
    assert 0 < len(messages) < 40
    assert messages[-1].value.startswith(b"v039")
    assert [m.offset for m in messages] == list(range(40 - len(messages), 40))
    sizes = broker.describe_topic("t")
    assert sizes.start_offsets[0] == 40 - len(messages)


def test_retention_never_deletes_the_active_segment(url):
    broker = connect(url)
    broker.create_topic("t", partitions=1, config={"retention.ms": 1})
    broker.produce("t", [OutgoingRecord(None, b"v", timestamp=1)])
    # automatic cleanup (as a writer runs it) leaves the active segment alone
    broker._topic("t").logs[0].cleanup(force=False)
    assert [m.value for m in _read_all(url)] == [b"v"]
    # Admin.cleanup rolls first, so everything old is eligible
    broker.cleanup("t")
    assert _read_all(url) == []
    assert broker.offsets(TP) == (1, 1)


def test_compaction_keeps_latest_per_key_and_drops_tombstones(url):
    admin = streamkit.Admin(broker=url)
    admin.create_topic("t", partitions=1, config={"cleanup.policy": "compact"})
    producer = streamkit.Producer(broker=url)
    sends = [(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"c", b"1"), (b"b", None),
             (None, b"unkeyed"), (b"a", b"3"), (b"d", b"1"), (b"d", None)]
    for key, value in sends:
        producer.send("t", key=key, value=value)
    producer.close()
    admin.cleanup("t")
    messages = _read_all(url)
    assert [(m.offset, m.key, m.value) for m in messages] == [
        (3, b"c", b"1"), (5, None, b"unkeyed"), (6, b"a", b"3")]
    info = admin.describe_topic("t")
    assert info.start_offsets == [3] and info.end_offsets == [9]
    producer = streamkit.Producer(broker=url)
    assert producer.send("t", key=b"a", value=b"4").get().offset == 9
    producer.close()
    admin.cleanup("t")
    assert [(m.offset, m.value) for m in _read_all(url)] == [(3, b"1"), (5, b"unkeyed"),
                                                             (9, b"4")]


def test_compaction_runs_in_the_background_of_the_writer(url):
    broker = connect(url)
    broker.create_topic("t", partitions=1, config={"cleanup.policy": "compact",
                                                   "segment.bytes": 200})
    for i in range(60):
        broker.produce("t", [OutgoingRecord(b"k%d" % (i % 3), b"v%d" % i)])
    messages = _read_all(url)
    assert len(messages) < 60                     # compacted on segment rolls
    latest = {m.key: m.value for m in messages}
    assert latest == {b"k0": b"v57", b"k1": b"v58", b"k2": b"v59"}
    offsets = [m.offset for m in messages]
    assert offsets == sorted(offsets)


def test_compact_delete_does_both(url):
    broker = connect(url)
    broker.create_topic("t", partitions=1, config={"cleanup.policy": "compact,delete",
                                                   "retention.ms": HOUR})
    old = int(time.time() * 1000) - 2 * HOUR
    broker.produce("t", [OutgoingRecord(b"x", b"old", timestamp=old)])
    broker.cleanup("t")
    broker.produce("t", [OutgoingRecord(b"a", b"1"), OutgoingRecord(b"a", b"2")])
    broker.cleanup("t")
    assert [(m.offset, m.value) for m in _read_all(url)] == [(2, b"2")]


def test_delete_policy_does_not_compact(url):
    broker = connect(url)
    broker.create_topic("t", partitions=1)
    broker.produce("t", [OutgoingRecord(b"a", b"1"), OutgoingRecord(b"a", b"2")])
    broker.cleanup("t")
    assert [m.value for m in _read_all(url)] == [b"1", b"2"]


def test_reader_positioned_in_compacted_range_moves_to_next_record(url):
    broker = connect(url)
    broker.create_topic("t", partitions=1, config={"cleanup.policy": "compact"})
    broker.produce("t", [OutgoingRecord(b"a", b"%d" % i) for i in range(10)])
    reader = connect(url)
    assert len(reader.fetch(TP, 0, max_records=3)) == 3
    broker.cleanup("t")
    assert [(m.offset, m.value) for m in reader.fetch(TP, 3)] == [(9, b"9")]


def test_background_compaction_waits_for_the_dirty_ratio(url):
    broker = connect(url)
    broker.create_topic("t", partitions=1, config={"cleanup.policy": "compact",
                                                   "segment.bytes": 150,
                                                   "min.cleanable.dirty.ratio": "1.0"})
    for i in range(40):
        broker.produce("t", [OutgoingRecord(b"k", b"v%d" % i)])
    # ratio 1.0: after the first pass, the clean part is never all dirty again
    assert len(_read_all(url)) > 10
    broker.cleanup("t")                       # a forced pass ignores the ratio
    assert [m.value for m in _read_all(url)] == [b"v39"]


def test_reader_positioned_in_deleted_range_moves_to_start_offset(url):
    broker = connect(url)
    broker.create_topic("t", partitions=1, config={"retention.ms": HOUR})
    old = int(time.time() * 1000) - 2 * HOUR
    broker.produce("t", [OutgoingRecord(None, b"old", timestamp=old)] * 10)
    reader = connect(url)
    assert len(reader.fetch(TP, 0, max_records=3)) == 3
    broker.cleanup("t")                       # deletes offsets 0-9 under the reader
    broker.produce("t", [OutgoingRecord(None, b"new")])
    assert [(m.offset, m.value) for m in reader.fetch(TP, 3)] == [(10, b"new")]


def test_segment_ms_rolls_by_age_so_retention_can_act(url):
    broker = connect(url)
    broker.create_topic("t", partitions=1, config={"segment.ms": 100, "retention.ms": HOUR})
    old = int(time.time() * 1000) - 2 * HOUR
    broker.produce("t", [OutgoingRecord(None, b"old", timestamp=old)] * 5)
    broker.produce("t", [OutgoingRecord(None, b"old", timestamp=old)] * 5)
    assert len(_read_all(url)) == 10                # same segment: younger than 100 ms
    time.sleep(0.15)
    broker.produce("t", [OutgoingRecord(None, b"new")])   # rolls; retention runs on roll
    assert [(m.offset, m.value) for m in _read_all(url)] == [(10, b"new")]
