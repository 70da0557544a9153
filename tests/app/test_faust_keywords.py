"""Faust's keyword arguments of agents, tables, topics and sends: those accepted do
what Faust's do (or nothing, said once), the others are refused naming the way here,
and misspelt ones still fail."""
from __future__ import annotations

import itertools
import logging

import pytest

import streamkit
from streamkit.errors import ImproperlyConfigured
from streamkit.serializers import codecs
from streamkit.types import RecordMetadata, TopicPartition
from streamkit.worker import Worker
from tests.running import run_until

pytestmark = pytest.mark.anyio
_ids = itertools.count()


def make_app(**settings) -> streamkit.App:
    name = f"fkw{next(_ids)}"
    return streamkit.App(name, broker=f"memory://{name}", store="memory://",
                         web_enabled=False, commit_interval=0.05, **settings)


def stored(app: streamkit.App, topic: str) -> list[streamkit.Message]:
    return [m for p in range(app.broker.partition_count(topic) or 0)
            for m in app.broker.fetch(TopicPartition(topic, p), 0, 100)]


async def test_send_takes_serializers_and_calls_back_with_the_metadata():
    app = make_app()
    topic = app.topic("orders", partitions=1)
    seen: list[object] = []

    async def async_callback(sent):
        seen.append(("async", sent.offset))

    meta = await topic.send(key="k", value={"a": 1}, key_serializer="raw",
                            value_serializer="msgpack", callback=seen.append, force=True)
    await topic.send(value=[1], callback=async_callback)
    (first, second) = stored(app, "orders")
    assert (first.key, first.value) == (b"k", codecs.get("msgpack").dumps({"a": 1}))
    assert second.value == b"[1]"                # the topic's own serializer again
    sent = seen[0]
    assert sent == meta and isinstance(sent, RecordMetadata)
    assert sent.result() == meta and sent.done() and sent.exception() is None  # Faust's
    assert seen[1] == ("async", 1)


async def test_agent_and_channel_sends_take_them_too():
    app = make_app()
    got, calls = [], []

    @app.agent(app.topic("jobs", partitions=1))
    async def worker(stream):
        async for value in stream:
            got.append(value)

    await worker.send(value="x", value_serializer="raw", callback=calls.append)
    assert stored(app, "jobs")[0].value == b"x"
    channel = app.channel()
    await channel.send(value=1, callback=calls.append, force=True)
    assert [c.offset for c in calls] == [0, 0]
    with pytest.raises(ImproperlyConfigured, match="schema= is not supported"):
        await app.topic("jobs").send(value=1, schema=object())
    with pytest.raises(TypeError, match="value_serialiser"):
        await app.topic("jobs").send(value=1, value_serialiser="raw")


async def test_on_recover_is_called_after_the_tables_are_restored():
    app = make_app()
    calls: list[tuple[str, int]] = []
    counts = app.Table("counts", default=int,
                       on_recover=lambda: calls.append(("plain", len(counts))))

    @counts.on_recover
    async def recovered():
        calls.append(("async", len(counts)))

    @app.agent(app.topic("words", partitions=1))
    async def count(stream):
        async for word in stream:
            counts[word] += 1

    await run_until(app, lambda: len(calls) == 2)
    assert sorted(calls) == [("async", 0), ("plain", 0)]


async def test_agent_supervisor_strategy_is_accepted_and_named_once(caplog):
    app = make_app()

    @app.agent(supervisor_strategy=object(), isolated_partitions=False)
    async def quiet(stream):
        async for _ in stream:
            pass

    assert "agent quiet: supervisor_strategy" in app.conf.ignored
    with caplog.at_level(logging.INFO, logger="streamkit"):
        worker = Worker(app, install_signal_handlers=False)
        await run_until(worker, lambda: worker.ready)
    lines = [r.getMessage() for r in caplog.records
             if "agent quiet: supervisor_strategy" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("settings without effect here")
    with pytest.raises(ImproperlyConfigured, match="concurrency=<partition count>"):
        app.agent(isolated_partitions=True)
    with pytest.raises(TypeError, match="supervisor_stategy"):
        app.agent(supervisor_stategy=None)


def test_table_and_topic_options_are_refused_naming_the_way():
    app = make_app()
    app.Table("plain", use_partitioner=False)                # Faust's default: fine
    refused = [(dict(window=object()), r"\.tumbling\(size\)"),
               (dict(changelog_topic=app.topic("x")), "-changelog, compacted"),
               (dict(use_partitioner=True), "group_by the stream")]
    for options, text in refused:
        with pytest.raises(ImproperlyConfigured, match=text):
            app.Table(f"t{len(app.tables)}", **options)
    with pytest.raises(TypeError, match="on_recovery"):
        app.Table("typo", on_recovery=print)
    assert app.topic("y", pattern=None, schema=None).name == "y"
    with pytest.raises(ImproperlyConfigured, match=r"app.topic\(pattern=\) is not supported"):
        app.topic(pattern="y.*")
    with pytest.raises(ImproperlyConfigured, match="schema= is not supported"):
        app.topic("z", schema=object())
