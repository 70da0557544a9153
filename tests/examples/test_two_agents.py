"""App behaviour the demo relies on: two agents on one topic each read every event
(as in Faust). It failed while the demo was written and was fixed in the App layer."""
from __future__ import annotations

import anyio
import streamkit
from streamkit.worker import Worker


def test_two_agents_on_one_topic_each_see_every_event():
    app = streamkit.App("two-agents", broker="memory://two-agents", store="memory://",
                        web_enabled=False)
    topic = app.topic("t", partitions=2)
    seen: dict[str, list] = {"a": [], "b": []}

    @app.agent(topic)
    async def a(stream):
        async for value in stream:
            seen["a"].append(value)

    @app.agent(topic)
    async def b(stream):
        async for value in stream:
            seen["b"].append(value)

    producer = streamkit.Producer(broker="memory://two-agents", default_partitions=2)
    for i in range(10):
        producer.send("t", value=str(i).encode(), key=str(i).encode())
    producer.flush()

    async def run() -> None:
        worker = Worker(app, install_signal_handlers=False)
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run_async)
            with anyio.move_on_after(2.5):
                while len(seen["a"]) + len(seen["b"]) < 20:
                    await anyio.sleep(0.05)
            worker.stop()

    anyio.run(run)
    assert len(seen["a"]) == 10 and len(seen["b"]) == 10
