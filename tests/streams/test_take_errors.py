"""An error below take() while it is collecting a list (a regression test from a code
review)."""
from __future__ import annotations

import itertools

import anyio
import pytest

import streamkit
from streamkit.worker import Worker

pytestmark = pytest.mark.anyio
_ids = itertools.count()


async def test_values_collected_by_take_survive_an_error_on_a_later_value():
    name = f"reviewtakecrash{next(_ids)}"
    app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                        web_enabled=False, commit_interval=0.05)
    topic = app.topic("readings", partitions=1)
    got = []

    @app.agent(topic)
    async def batches(stream):
        async for values in stream.filter(lambda v: v["x"] >= 0).take(10, within=0.2):
            got.extend(v["x"] for v in values)

    for x in (1, 2, 3):
        await topic.send(value={"x": x}, partition=0)
    await topic.send(value={}, partition=0)          # the filter raises on this one
    for x in (5, 6):
        await topic.send(value={"x": x}, partition=0)
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.move_on_after(3):
            while sorted(got) != [1, 2, 3, 5, 6]:
                await anyio.sleep(0.01)
        await anyio.sleep(0.2)
        worker.stop()
    committed = [o.committed for o in app.broker.group_offsets(name)
                 if o.topic == "readings" and o.partition == 0]
    assert committed == [6]
    # the bad value is skipped (decision 001); the ones before it are not
    assert sorted(got) == [1, 2, 3, 5, 6]
