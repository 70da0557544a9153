"""Keys of a topic without a key type: JSON where they are JSON, bytes otherwise, the
same whether a batch holds a few keys over and over or a new key in every message."""
from __future__ import annotations

import itertools

import anyio
import pytest

import streamkit
from streamkit.serializers import codecs
from streamkit.topics import JSON_OR_BYTES
from streamkit.worker import Worker

_ids = itertools.count()


@pytest.mark.parametrize("raw", [
    b"0", b"7", b"42", b"007", b"00", b"-5", b"1.5", b"1e3", b" 12", b"12 ", b"",
    b"a", b'"x"', b"123456789012345678901234567890", b"1" * 5000, "١٢".encode(),
])
def test_digit_keys_decode_as_the_json_decoder_reads_them(raw):
    try:
        expected = codecs.get("json").loads(raw)
    except ValueError:
        expected = raw                  # not JSON: the bytes themselves
    got = JSON_OR_BYTES.loads(raw)
    assert got == expected and type(got) is type(expected)


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["events", "items", "current_event"])
async def test_an_agent_sees_every_key_whether_keys_repeat_or_are_all_new(how):
    # (untyped keys are decoded when first asked for, however the agent asks)
    name = f"untypedkeys{next(_ids)}"
    app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                        web_enabled=False)
    topic = app.topic("ids", partitions=1)
    seen: list[object] = []
    repeated = [b"1", b"2", None, b"a"] * 500              # the key cache's case
    distinct = [b"%d" % i for i in range(3000)] + [b"007", None, b'"x"', b"b"]
    raws = repeated + distinct + repeated

    @app.agent(topic)
    async def collect(stream):
        if how == "events":
            async for event in stream.events():
                seen.append(event.key)
        elif how == "items":
            async for key, _value in stream.items():
                seen.append(key)
        else:
            async for _value in stream:
                seen.append(streamkit.current_event().key)

    for raw in raws:
        await topic.send(key=raw, value=b"v")
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(10):
            while len(seen) < len(raws):
                await anyio.sleep(0.01)
        worker.stop()
    expected = [None if raw is None else JSON_OR_BYTES.loads(raw) for raw in raws]
    assert seen == expected
    assert seen[-4 - len(repeated):-len(repeated)] == [b"007", None, "x", b"b"]
