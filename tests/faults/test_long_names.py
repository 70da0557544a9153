"""A topic name of Kafka's full 249 characters goes through every file operation of the
embedded log (the file system allows 255 bytes per name: anything streamkit adds to a
topic name in a file name must fit)."""
from __future__ import annotations

from click.testing import CliRunner

import streamkit
from streamkit.cli import cli
from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition

from .logfiles import batch_at, flip

NAME = "t" * 239 + ".long-name"


def test_a_249_character_topic_lives_its_whole_life_on_the_log(tmp_path):
    assert len(NAME) == 249
    root = tmp_path / "log"
    url = f"log://{root}"
    broker = connect(url)
    broker.create_topic(NAME, partitions=2, config={"cleanup.policy": "compact",
                                                    "segment.bytes": 2000})
    for n in range(20):
        broker.produce(NAME, [OutgoingRecord(b"k%d" % (i % 7), b"v%d-%d" % (n, i))
                              for i in range(20)])
    consumer = streamkit.Consumer(NAME, broker=url, group_id="g" * 300,
                                  auto_offset_reset="earliest", consumer_timeout_ms=500)
    # (compaction already ran at each roll: what is left holds every key)
    assert {m.key for m in consumer} == {b"k%d" % i for i in range(7)}
    consumer.commit()
    consumer.close()
    broker.cleanup(NAME)                      # compaction rewrites segments by temp file
    kept = [m for p in range(2) for m in broker.fetch(TopicPartition(NAME, p), 0, 1000)]
    assert sorted(m.key for m in kept) == sorted(b"k%d" % i for i in range(7))

    batch = batch_at(root, NAME, kept[0].offset, partition=kept[0].partition)
    flip(batch.path, batch.pos + batch.size - 2)
    runner = CliRunner()
    assert runner.invoke(cli, ["log", "check", NAME, "--broker", url]).exit_code in (0, 1)
    repaired = runner.invoke(cli, ["log", "repair", NAME, "--yes", "--broker", url])
    assert repaired.exit_code == 0, repaired.output
    broker.delete_topic(NAME)
    assert NAME not in broker.list_topics()
    broker.close()
