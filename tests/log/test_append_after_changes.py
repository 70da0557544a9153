"""An open writer's next append notices what others did to the partition meanwhile.

An append checks only the recovery point and its own open file (one ``pread``, one
``fstat``), not the directory: these are the changes that check must still catch.
Two brokers on one directory stand for two processes (each has its own partitions,
files and locks).
"""
from __future__ import annotations

import os
import shutil

from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition

TP = TopicPartition("t", 0)


def _values(url: str) -> list[bytes | None]:
    reader = connect(url)
    try:
        return [m.value for m in reader.fetch(TP, 0, 100)]
    finally:
        reader.close()


def test_an_append_after_the_segment_file_was_replaced_goes_to_the_new_file(log_url):
    writer = connect(log_url)
    writer.create_topic("t", partitions=1)
    writer.produce("t", [OutgoingRecord(None, b"a"), OutgoingRecord(None, b"b")])
    # another process replaces the active segment by a file of the same bytes (as
    # `streamkit log repair` rewrites a segment): same size, same recovery point
    path = log_url.removeprefix("log://") + "/t/0/" + "0" * 20 + ".log"
    shutil.copyfile(path, path + ".new")
    os.replace(path + ".new", path)
    meta = writer.produce("t", [OutgoingRecord(None, b"c")])
    assert meta[0].offset == 2
    assert _values(log_url) == [b"a", b"b", b"c"]     # not written to the old inode
    writer.close()


def test_an_append_after_another_writer_rolled_goes_to_the_new_segment(url):
    writer, other = connect(url), connect(url)
    writer.create_topic("t", partitions=1)
    writer.produce("t", [OutgoingRecord(None, b"a")])
    other.produce("t", [OutgoingRecord(None, b"b")])
    other.cleanup("t")                                   # rolls the active segment
    assert writer.produce("t", [OutgoingRecord(None, b"c")])[0].offset == 2
    other.produce("t", [OutgoingRecord(None, b"d")])
    assert writer.produce("t", [OutgoingRecord(None, b"e")])[0].offset == 4
    assert _values(url) == [b"a", b"b", b"c", b"d", b"e"]
    writer.close()
    other.close()


def test_an_append_after_the_topic_was_deleted_and_created_again_starts_it(url):
    writer, other = connect(url), connect(url)
    writer.create_topic("t", partitions=1)
    writer.produce("t", [OutgoingRecord(None, b"old")] * 3)
    other.delete_topic("t")
    other.create_topic("t", partitions=1)
    assert writer.produce("t", [OutgoingRecord(None, b"new")])[0].offset == 0
    assert _values(url) == [b"new"]
    writer.close()
    other.close()
