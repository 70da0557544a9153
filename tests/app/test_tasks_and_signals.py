"""``@app.task``, ``on_leader``, and the app's signals (``on_started``,
``on_partitions_assigned``, ``on_partitions_revoked``, ...) in a worker running in
this process, on a memory:// broker."""
from __future__ import annotations

import itertools
import logging
from typing import Any

import anyio
import pytest

import streamkit
from streamkit.types import TopicPartition
from streamkit.worker import Worker
from tests.running import run_until

pytestmark = pytest.mark.anyio
_ids = itertools.count()


def make_app(name: str | None = None, **settings: Any) -> streamkit.App:
    name = name or f"tasks{next(_ids)}"
    return streamkit.App(name, broker=f"memory://{name}", store="memory://",
                         web_enabled=False, commit_interval=0.05, topic_partitions=2,
                         **settings)


async def test_tasks_run_once_when_the_worker_is_ready() -> None:
    app = make_app()
    counts = app.Table("counts", default=int)
    calls: list[Any] = []
    orders = app.topic("orders")

    @app.agent(orders)
    async def count(stream):
        async for value in stream:
            counts[value] += 1

    @app.task
    async def bare() -> None:
        calls.append(("bare", app.worker.ready))
        await orders.send(value="sent by a task")

    @app.task(on_leader=True)
    def with_app(the_app: streamkit.App) -> None:
        calls.append(("with_app", the_app is app))

    @app.task()
    async def failing() -> None:
        raise RuntimeError("a task that fails is logged")

    worker = Worker(app, install_signal_handlers=False)
    await run_until(worker, lambda: counts.get("sent by a task") == 1)
    assert sorted(calls) == [("bare", True), ("with_app", True)]
    assert [task.name for task in app.tasks] == ["bare", "with_app", "failing"]


async def test_signals_reach_their_receivers_with_fausts_arguments(
        caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(table_standby_replicas=1)
    received: list[tuple[str, Any]] = []

    @app.agent(app.topic("orders", partitions=2))
    async def process(stream):
        async for _ in stream:
            pass

    @app.on_worker_init.connect
    def worker_init(sender: Any, **kwargs: Any) -> None:
        received.append(("worker_init", sender is app and kwargs["signal"] is
                         app.on_worker_init))

    @app.on_started.connect()
    async def started(sender: Any, **kwargs: Any) -> None:
        received.append(("started", sender.worker.ready))

    @app.on_partitions_assigned.connect
    async def assigned(sender: Any, assigned: set[TopicPartition], **kwargs: Any) -> None:
        received.append(("assigned", frozenset(assigned)))

    @app.on_partitions_revoked.connect
    async def revoked(sender: Any, revoked: set[TopicPartition]) -> None:  # no **kwargs
        # (async, at the last revocation: awaited once the worker has closed)
        received.append(("revoked", frozenset(revoked)))

    @app.on_rebalance_complete.connect
    def complete(sender: Any, **kwargs: Any) -> None:
        received.append(("rebalance_complete", None))

    @app.on_before_shutdown.connect
    async def shutdown(sender: Any, **kwargs: Any) -> None:
        received.append(("before_shutdown", None))

    both = frozenset({TopicPartition("orders", 0), TopicPartition("orders", 1)})
    worker = Worker(app, install_signal_handlers=False)
    with caplog.at_level(logging.INFO, logger="streamkit.worker"):
        await run_until(worker, lambda: ("started", True) in received)
    assert received == [("worker_init", True), ("rebalance_complete", None),
                        ("assigned", both), ("started", True), ("before_shutdown", None),
                        ("revoked", both)]
    assert "settings without effect here: table_standby_replicas" in caplog.text


def ticker(ticks: dict[str, int], which: str) -> Any:
    def tick() -> None:
        ticks[which] += 1
    return tick


async def test_one_of_two_workers_is_the_leader_and_runs_on_leader_timers() -> None:
    name = f"leader{next(_ids)}"
    ticks: dict[str, int] = {"a": 0, "b": 0}
    workers: dict[str, Worker] = {}
    for which in ("a", "b"):
        app = make_app(name)

        @app.agent(app.topic("orders", partitions=2))
        async def process(stream):
            async for _ in stream:
                pass

        app.timer(0.02, on_leader=True)(ticker(ticks, which))
        workers[which] = Worker(app, install_signal_handlers=False)

    async def spread() -> bool:
        return all(w.consumer is not None and len(w.consumer.assignment()) == 1
                   for w in workers.values())

    async with anyio.create_task_group() as tg:
        for worker in workers.values():
            tg.start_soon(worker.run_async)
        with anyio.fail_after(10):
            while not await spread():
                await anyio.sleep(0.01)
        leaders = [w for w in workers if workers[w].is_leader()]
        assert len(leaders) == 1 and workers[leaders[0]].app.is_leader()
        before = dict(ticks)
        await anyio.sleep(0.3)
        follower = "b" if leaders == ["a"] else "a"
        assert ticks[leaders[0]] > before[leaders[0]]
        assert ticks[follower] == before[follower]
        for worker in workers.values():
            worker.stop()


async def test_an_app_subclass_may_define_on_started_as_in_faust() -> None:
    started: list[bool] = []

    class MyApp(streamkit.App):
        async def on_started(self) -> None:
            started.append(self.worker.ready)

    name = f"subclass{next(_ids)}"
    app = MyApp(name, broker=f"memory://{name}", store="memory://", web_enabled=False)
    await run_until(Worker(app, install_signal_handlers=False), lambda: bool(started))
    assert started == [True]
