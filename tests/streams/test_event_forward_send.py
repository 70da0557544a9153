"""``event.forward()`` and ``event.send()`` take Faust's arguments: a topic's name as
well as a Topic, and key, value, partition, timestamp, headers in Faust's order."""
from __future__ import annotations

import itertools

import pytest

import streamkit
from streamkit.types import TopicPartition
from tests.running import run_until

pytestmark = pytest.mark.anyio
_ids = itertools.count()


def read_all(app: streamkit.App, topic: str) -> list[streamkit.Message]:
    broker = app.broker
    return [m for p in range(broker.partition_count(topic) or 0)
            for m in broker.fetch(TopicPartition(topic, p), 0, 1000)]


async def test_forward_and_send_to_a_topic_name_with_faust_positional_arguments():
    name = f"evsend{next(_ids)}"
    app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                        web_enabled=False, commit_interval=0.05)
    source = app.topic("source", partitions=1)
    done: list[int] = []

    @app.agent(source)
    async def relay(stream):
        async for event in stream.events():
            await event.forward("forwarded")                          # by name
            await event.forward("forwarded", "k2", {"v": 2}, None, 12.5,
                                {"h": "x"})                          # Faust's order
            await event.send("sent", "k3", {"v": 3})                  # positional
            await event.send(app.topic("sent"), value={"v": 4})
            done.append(1)

    await source.send(key="k1", value={"v": 1}, timestamp=10.0, headers={"a": "b"})
    await run_until(app, lambda: done and len(read_all(app, "sent")) == 2)
    forwarded = sorted(read_all(app, "forwarded"), key=lambda m: m.offset)
    assert [(m.key, m.value, m.timestamp, list(m.headers)) for m in forwarded] == [
        (b'"k1"', b'{"v":1}', 10_000, [("a", b"b")]),
        (b'"k2"', b'{"v":2}', 12_500, [("h", b"x")])]
    sent = sorted(read_all(app, "sent"), key=lambda m: m.offset)
    assert [(m.key, m.value, m.timestamp) for m in sent] == [
        (b'"k3"', b'{"v":3}', 10_000), (b'"k1"', b'{"v":4}', 10_000)]


async def test_a_name_needs_an_event_of_a_stream():
    event = streamkit.Event("k", 1, [], streamkit.Message("t", 0, 0, 0, 0, b"", b"", []))
    with pytest.raises(TypeError, match="has no stream"):
        await event.forward("elsewhere")
    with pytest.raises(TypeError, match="expected a Topic, an Agent or a topic's name"):
        await event.send(42)


async def test_faust_send_options_on_events_write_now_and_call_back():
    name = f"evsend{next(_ids)}"
    app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                        web_enabled=False, commit_interval=0.05)
    source = app.topic("source", partitions=1)
    sent: list[tuple[str, int, bool]] = []

    @app.agent(source)
    async def relay(stream):
        async for event in stream.events():
            def written(what):
                # called once written: the record is in the log already
                return lambda m: sent.append((what, m.result().offset,
                                              bool(read_all(app, m.topic))))
            await event.send("out", value="v", value_serializer="raw",
                             callback=written("send"))
            await event.forward("fwd", key="k", key_serializer="raw",
                                callback=written("forward"))
            try:
                await event.send("out", schema=object())
            except streamkit.errors.ImproperlyConfigured as exc:
                sent.append(("refused", "schema=" in str(exc), True))

    await source.send(key="a", value={"v": 1})
    await run_until(app, lambda: len(sent) == 3)
    assert sent == [("send", 0, True), ("forward", 0, True), ("refused", True, True)]
    assert [m.value for m in read_all(app, "out")] == [b"v"]
    assert [(m.key, m.value) for m in read_all(app, "fwd")] == [(b"k", b'{"v":1}')]
