"""Codecs written in Faust's form (``_dumps``/``_loads``, chained with ``|``) carry
values through a topic, and a codec class with nothing to call is refused."""
from __future__ import annotations

import itertools
import json
from datetime import datetime
from typing import Any

import pytest

import streamkit
from streamkit.serializers import codecs
from tests.running import run_until

pytestmark = pytest.mark.anyio
_ids = itertools.count()


class Reversed(streamkit.Codec):
    """Faust's form: only the private methods."""

    def _dumps(self, obj: Any) -> bytes:
        return json.dumps(obj).encode()[::-1]

    def _loads(self, s: bytes) -> Any:
        return json.loads(bytes(s)[::-1])


def make_app() -> streamkit.App:
    name = f"fcodec{next(_ids)}"
    return streamkit.App(name, broker=f"memory://{name}", store="memory://",
                         web_enabled=False, commit_interval=0.05)


async def test_a_faust_form_codec_sends_and_reads_values_through_a_topic() -> None:
    codecs.register("reversed_json", Reversed())
    app = make_app()
    by_object = app.topic("by-object", value_serializer=Reversed())
    by_name = app.topic("by-name", value_serializer="reversed_json")
    got: list[tuple[str, Any]] = []

    @app.agent(by_object)
    async def first(stream):
        async for value in stream:
            got.append(("object", value))

    @app.agent(by_name)
    async def second(stream):
        async for value in stream:
            got.append(("name", value))

    await by_object.send(key="k", value={"a": 1})
    await by_name.send(key="k", value=[1, 2])
    stored = [m for p in range(app.broker.partition_count("by-name") or 0)
              for m in app.broker.fetch(streamkit.TopicPartition("by-name", p), 0, 10)]
    assert b"]2 ,1[" in [m.value for m in stored]      # not None: no tombstone
    await run_until(app, lambda: len(got) == 2)
    assert sorted(got) == [("name", [1, 2]), ("object", {"a": 1})]


async def test_chained_codecs_and_chained_names() -> None:
    chained = Reversed() | codecs.get("binary")
    data = chained.dumps({"x": 1})
    assert data == b"fTEgOiJ4Ins="            # base64 of the reversed JSON
    assert chained.loads(data) == {"x": 1}
    assert codecs.get("json|binary").loads(codecs.get("json|binary").dumps([1])) == [1]
    app = make_app()
    topic = app.topic("chained", value_serializer="msgpack|binary")
    got: list[Any] = []

    @app.agent(topic)
    async def reader(stream):
        async for value in stream:
            got.append(value)

    await topic.send(value={"v": 2})
    await run_until(app, lambda: got == [{"v": 2}])


def test_a_codec_class_that_defines_neither_form_is_refused() -> None:
    class Empty(streamkit.Codec):
        pass

    class OnlyDumps(streamkit.Codec):
        def _dumps(self, obj: Any) -> bytes:
            return b""

    with pytest.raises(TypeError, match=r"Empty must define dumps\(\) or _dumps\(\) "
                                        r"and loads\(\) or _loads\(\)"):
        codecs.register("empty", Empty)
    with pytest.raises(TypeError, match=r"OnlyDumps must define loads\(\) or _loads"):
        OnlyDumps()
    assert "empty" not in codecs.names()


class Trip(streamkit.Record):
    id: int
    when: datetime


async def test_a_record_reaches_a_faust_codec_as_its_representation() -> None:
    app = make_app()
    topic = app.topic("trips", value_type=Trip, value_serializer=Reversed())
    got: list[Any] = []

    @app.agent(topic)
    async def reader(stream):
        async for trip in stream:
            got.append(trip)

    trip = Trip(1, datetime(2020, 1, 2, 3, 4, 5))
    await topic.send(value=trip)
    (message,) = [m for p in range(app.broker.partition_count("trips") or 0)
                  for m in app.broker.fetch(streamkit.TopicPartition("trips", p), 0, 10)]
    assert json.loads(message.value[::-1]) == {"id": 1, "when": "2020-01-02T03:04:05"}
    await run_until(app, lambda: got == [trip])
