"""Consumer group ids of any length on the embedded log (issue 13, #8a).

Kafka accepts group ids of any length. The embedded log keeps a group in a directory
named after the url-quoted id; a name past 255 bytes (the file name limit of Linux file
systems) used to fail with a raw ``OSError [Errno 36] File name too long``.
"""
from __future__ import annotations

import json
import time

import anyio
import pytest
from click.testing import CliRunner

import streamkit
from streamkit.cli import cli
from streamkit.log.groupstore import FileGroupStore
from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition

from .workers import run_worker

LONG_IDS = [
    "g" * 300,
    "".join(chr(ord("a") + i % 26) for i in range(1000)),
    "../é/ü/ünïcödé ∑ ../" * 20,        # non-ASCII, "/" and "..", 400 characters
]


def fill(broker, topic: str = "t", n: int = 6) -> None:
    broker.create_topic(topic, partitions=2)
    broker.produce(topic, [OutgoingRecord(None, b"%d" % i, partition=i % 2)
                           for i in range(n)])


def read(member, n: int, timeout: float = 5.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += member.poll(max_records=100, timeout=0.01)
    return got


@pytest.mark.parametrize("group_id", LONG_IDS, ids=["300", "1000", "non-ascii"])
def test_a_group_with_a_long_id_commits_reopens_lists_and_deletes(tmp_path, group_id):
    url = f"log://{tmp_path / 'log'}"
    broker = connect(url)
    fill(broker)
    member = broker.group_consumer(group_id, ["t"])
    assert len(read(member, 6)) == 6
    member.commit()
    member.close()
    broker.close()

    again = connect(url)                                  # a new process would see this
    assert again.list_groups() == [group_id]
    offsets = again.group_offsets(group_id)
    assert [(o.partition, o.committed, o.lag) for o in offsets] == [(0, 3, 0), (1, 3, 0)]
    again.produce("t", [OutgoingRecord(None, b"new", partition=1)])
    member = again.group_consumer(group_id, ["t"])        # resumes where it committed
    assert [(m.partition, m.value) for m in read(member, 1)] == [(1, b"new")]
    member.commit()
    member.close()
    again.delete_group(group_id)
    assert again.list_groups() == []
    assert again.group_offsets(group_id) == []
    assert list((tmp_path / "log" / "__consumer_groups").iterdir()) == []
    again.close()


def test_long_and_short_ids_live_side_by_side_and_short_ones_keep_their_place(tmp_path):
    url = f"log://{tmp_path / 'log'}"
    broker = connect(url)
    fill(broker)
    ids = ["my group/1", "../up", *LONG_IDS, "x" * 255]
    for i, group_id in enumerate(ids):
        member = broker.group_consumer(group_id, ["t"])
        read(member, 6)
        member.commit({TopicPartition("t", 0): i})
        member.close(commit=False)
    assert broker.list_groups() == sorted(ids)
    for i, group_id in enumerate(ids):
        assert broker.group_offsets(group_id)[0].committed == i, group_id
    # an id whose quoted name fits keeps today's readable directory name
    root = tmp_path / "log" / "__consumer_groups"
    assert (root / "my%20group%2F1").is_dir() and (root / "%2E.%2Fup").is_dir()
    assert (root / ("x" * 255)).is_dir()
    assert all(len(p.name.encode()) <= 255 for p in root.iterdir())
    broker.delete_group(LONG_IDS[1])
    assert broker.list_groups() == sorted(set(ids) - {LONG_IDS[1]})
    broker.close()


def test_a_worker_of_an_app_with_the_longest_id_consumes_and_commits(tmp_path):
    # The app id is the worker's consumer group id. App ids follow the topic-name rule
    # (ASCII, at most 249 characters: decision 506), so theirs fits a file name; the
    # hashed directories of longer group ids are the tests above.
    app_id = "billing-" + "b" * 241
    app = streamkit.App(app_id, broker=f"log://{tmp_path / 'log'}", datadir=tmp_path,
                        store="memory://", web_enabled=False, commit_interval=0.05)
    events = app.topic("events", partitions=2)
    got: list = []

    @app.agent(events)
    async def read_events(stream):
        async for value in stream:
            got.append(value)

    async def main() -> None:
        for i in range(4):
            await events.send(key=str(i), value=i)
        await run_worker(app, lambda _: len(got) == 4)
    anyio.run(main)
    assert sorted(got) == [0, 1, 2, 3]
    admin = streamkit.Admin(broker=f"log://{tmp_path / 'log'}")
    try:
        assert admin.list_groups() == [app_id]
        assert sum(o.committed for o in admin.group_offsets(app_id)) == 4
    finally:
        admin.close()


def test_the_groups_command_shows_the_real_long_id(tmp_path):
    url = f"log://{tmp_path / 'log'}"
    group_id = "team/" + "ü" * 300
    runner = CliRunner()
    sent = runner.invoke(cli, ["send", "events", "1", "--broker", url],
                         catch_exceptions=False)
    assert sent.exit_code == 0, sent.output
    tail = runner.invoke(cli, ["tail", "events", "--broker", url, "--group", group_id,
                               "--from-beginning", "-n", "1"], catch_exceptions=False)
    assert [json.loads(line)["value"] for line in tail.output.splitlines()] == [1]
    groups = runner.invoke(cli, ["groups", "--broker", url], catch_exceptions=False)
    assert groups.exit_code == 0, groups.output
    assert group_id in groups.output


def test_a_partition_owner_file_name_never_exceeds_the_limit(tmp_path):
    # owners/<topic>-<partition>: a topic name of 249 characters (Kafka's longest) and a
    # partition number of six digits make 256 bytes.
    store = FileGroupStore(tmp_path / "__consumer_groups", "g")
    tp = TopicPartition("t" * 249, 123456)
    try:
        assert store.acquire(tp, "m1")
        other = FileGroupStore(tmp_path / "__consumer_groups", "g")
        assert not other.acquire(tp, "m2")            # still one owner at a time
        other.close()
        store.release(tp, "m1")
    finally:
        store.close()
    names = [p.name for p in (tmp_path / "__consumer_groups" / "g" / "owners").iterdir()]
    assert names and all(len(n.encode()) <= 255 for n in names)
