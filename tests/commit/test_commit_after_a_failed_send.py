"""At-least-once when writing the output buffer fails (a regression test from a code
review)."""
from __future__ import annotations

import itertools

import anyio
import pytest

import streamkit
from streamkit.types import TopicPartition
from streamkit.worker import Worker

pytestmark = pytest.mark.anyio
_ids = itertools.count()


async def test_failed_send_does_not_let_the_input_offset_be_committed():
    name = f"reviewout{next(_ids)}"
    app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                        web_enabled=False, commit_interval=0.05)
    source = app.topic("in", partitions=1)
    out = app.topic("out", partitions=1)
    done = []

    @app.agent(source)
    async def copy(stream):
        async for value in stream:
            out.send_soon(value=value)
            done.append(value)

    for i in range(3):
        await source.send(value=i)
    broker = app.broker
    real_produce = broker.produce
    failures = []

    def flaky_produce(topic, records, acks=1):
        if topic == "out" and not failures:
            failures.append(len(records))
            raise ConnectionError("broker unavailable (simulated, once)")
        return real_produce(topic, records, acks=acks)

    broker.produce = flaky_produce
    worker = Worker(app, install_signal_handlers=False)
    with anyio.fail_after(5):
        with pytest.raises(BaseException):
            await worker.run_async()   # the failed write stops the worker
    assert failures
    committed = sum(o.committed or 0 for o in broker.group_offsets(name)
                    if o.topic == "in")
    written = [m for p in range(broker.partition_count("out"))
               for m in broker.fetch(TopicPartition("out", p), 0, 100)]
    # every event whose offset was committed must have had its send written
    assert len(written) >= committed, (committed, len(written))
