"""A worker running in this process on a memory:// broker: wiring a user relies on."""
from __future__ import annotations

import itertools
import json

import anyio
import pytest

import streamkit
from streamkit.errors import ImproperlyConfigured
from streamkit.types import TopicPartition
from streamkit.worker import Worker
from tests.running import run_until

pytestmark = pytest.mark.anyio
_ids = itertools.count()


class Ride(streamkit.Record, serializer="json"):
    vendorId: int
    total_amount: float = 0.0


def make_app(**settings) -> streamkit.App:
    name = f"inproc{next(_ids)}"
    return streamkit.App(name, broker=f"memory://{name}", store="memory://",
                         web_enabled=False, commit_interval=0.05, **settings)


def read_all(app: streamkit.App, topic: str) -> list[streamkit.Message]:
    broker = app.broker
    out = []
    for p in range(broker.partition_count(topic) or 0):
        out.extend(broker.fetch(TopicPartition(topic, p), 0, 100_000))
    return out


async def test_topic_send_returns_metadata_and_agent_send_reaches_the_agent():
    app = make_app()
    got = []

    @app.agent()
    async def greeter(stream):
        async for value in stream:
            got.append(value)

    assert greeter.channel.name == f"{app.conf.id}-greeter"
    meta = await app.topic("plain").send(key="k", value={"a": 1})
    assert (meta.topic, meta.offset) == ("plain", 0)
    await greeter.send(value="hello", key="k")
    await run_until(app, lambda: got == ["hello"])


async def test_two_agents_on_one_topic_each_get_every_event_and_concurrency_splits():
    app = make_app()
    topic = app.topic("t", partitions=4)
    a, b = [], []

    @app.agent(topic)
    async def first(stream):
        async for value in stream:
            a.append(value)

    @app.agent(topic, concurrency=3)
    async def second(stream):
        async for value in stream:
            b.append(value)

    for i in range(40):
        await topic.send(key=str(i), value=i)
    await run_until(app, lambda: len(a) == 40 and len(b) == 40)
    assert sorted(a) == sorted(b) == list(range(40))
    assert {s.index for s in second.streams} == {0, 1, 2}
    assert all(s.events_total > 0 for s in second.streams)


async def test_through_and_echo_continue_and_copy():
    app = make_app()
    source, middle, copy = app.topic("source"), app.topic("middle"), app.topic("copy")
    seen = []

    @app.agent(source)
    async def relay(stream):
        async for value in stream.echo(copy).through(middle):
            seen.append((streamkit.current_event().message.topic, value))

    for i in range(5):
        await source.send(value=i)
    await run_until(app, lambda: len(seen) == 5)
    assert sorted(seen) == [("middle", i) for i in range(5)]
    assert sorted(json.loads(m.value) for m in read_all(app, "copy")) == list(range(5))


async def test_group_by_repartitions_by_the_new_key():
    app = make_app(topic_partitions=4)
    rides = app.topic("rides", value_type=Ride)
    where = {}

    @app.agent(rides)
    async def regroup(stream):
        async for ride in stream.group_by(Ride.vendorId, name="by-vendor"):
            event = streamkit.current_event()
            where.setdefault(ride.vendorId, set()).add(event.message.partition)

    for i in range(60):
        await rides.send(key=str(i), value=Ride(vendorId=i % 5))
    await run_until(app, lambda: len(where) == 5)
    assert all(len(partitions) == 1 for partitions in where.values())
    from streamkit.partitioner import partition_for_key
    assert where[3] == {partition_for_key(b"3", 4)}
    assert f"{app.conf.id}-by-vendor-repartition" in app.broker.list_topics()


async def test_timers_and_crontab_run_while_the_worker_runs():
    app = make_app()
    ticks = []

    @app.timer(0.05)
    async def tick():
        ticks.append("tick")

    @app.timer(0.05)
    def tick_with_app(app_):
        ticks.append(app_.conf.id)

    @app.crontab("* * * * *")
    def every_minute():
        pass

    await run_until(app, lambda: ticks.count("tick") >= 3 and app.conf.id in ticks)


def test_crontab_refuses_a_bad_expression():
    app = make_app()
    with pytest.raises(ImproperlyConfigured, match="not a valid cron"):
        app.crontab("every day")


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("STREAMKIT_BROKER", "memory://from-env")
    monkeypatch.setenv("STREAMKIT_TOPIC_PARTITIONS", "7")
    monkeypatch.setenv("STREAMKIT_WEB_ENABLED", "false")
    app = streamkit.App("envapp", broker="log://")
    assert app.conf.broker == "memory://from-env"
    assert app.conf.topic_partitions == 7
    assert app.conf.web_enabled is False
    monkeypatch.setenv("STREAMKIT_TOPIC_PARTITIONS", "many")
    with pytest.raises(ImproperlyConfigured, match="STREAMKIT_TOPIC_PARTITIONS='many'"):
        streamkit.App("envapp")


def test_bad_settings_are_refused_with_the_setting_named():
    with pytest.raises(ImproperlyConfigured, match="consumer_auto_offset_reset='newest'"):
        streamkit.App("x", consumer_auto_offset_reset="newest")
    with pytest.raises(ImproperlyConfigured, match="processing_guarantee"):
        streamkit.App("x", processing_guarantee="maybe")


async def test_tables_restore_from_the_changelog_in_a_new_worker():
    name = f"restore{next(_ids)}"

    def build():
        app = streamkit.App(name, broker=f"memory://{name}", store="memory://",
                            web_enabled=False, commit_interval=0.05)
        rides = app.topic("rides", value_type=Ride)
        counts = app.Table("counts", default=int)

        @app.agent(rides)
        async def count(stream):
            async for ride in stream.group_by(Ride.vendorId):
                counts[ride.vendorId] += 1
        return app, rides, counts

    app, rides, counts = build()
    for i in range(30):
        await rides.send(key=str(i), value=Ride(vendorId=i % 3))
    await run_until(app, lambda: sum(v for _, v in counts.items()) == 30)
    # a new app object: memory stores start empty, the changelog has it all
    app2, _, counts2 = build()
    worker = Worker(app2, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(5):
            while not worker.ready or dict(counts2.items()) != {0: 10, 1: 10, 2: 10}:
                await anyio.sleep(0.01)
        worker.stop()


async def test_the_status_line_reports_rate_lag_and_tables():
    app = make_app()
    counts = app.Table("counts", default=int)

    @app.agent(app.topic("t"))
    async def count(stream):
        async for value in stream:
            counts[value] += 1

    for i in range(10):
        await app.topic("t").send(key=i % 2, value=i % 2)
    lines = []

    def counted() -> bool:
        if len(counts) == 2 and sum(v for _, v in counts.items()) == 10:
            lines.append(app.worker.status_line())
            return True
        return False

    await run_until(app, counted)
    assert "events/s" in lines[0] and "processed 10" in lines[0]
    assert "lag 0" in lines[0] and "counts=2" in lines[0]


async def test_a_slow_agent_stays_in_its_group_while_the_fetcher_waits(caplog):
    # the fetcher stops fetching when streams hold MAX_BUFFERED events, but keeps
    # polling (heartbeats): with a 1 s session timeout a slow agent is not dropped
    from streamkit.streams import fetcher
    caplog.set_level("INFO", logger="streamkit.log")
    app = make_app(session_timeout=1.0, max_poll_records=5)
    topic = app.topic("slow", partitions=1)
    seen = []

    @app.agent(topic)
    async def slow(stream):
        async for value in stream:
            seen.append(value)
            if len(seen) == 1:
                await anyio.sleep(2.5)   # longer than the session timeout

    for i in range(50):
        await topic.send(key="k", value=i)
    # another member of the group, polling all along: it is the one that would
    # notice a silent worker and take its partitions away
    other = app.broker.group_consumer(app.conf.id, ["elsewhere"], session_timeout=1.0)
    stop_other = anyio.Event()

    async def poll_other():
        while not stop_other.is_set():
            other.poll(10, 0.0)
            await anyio.sleep(0.05)

    original = fetcher.MAX_BUFFERED
    fetcher.MAX_BUFFERED = 10
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(poll_other)
            await run_until(app, lambda: len(seen) == 50, within=15)
            stop_other.set()
    finally:
        fetcher.MAX_BUFFERED = original
        other.close()
    assert seen == list(range(50))
    assert "is gone" not in caplog.text and "re-register" not in caplog.text
    groups = app.broker.group_offsets(app.conf.id)
    assert [(o.topic, o.committed) for o in groups if o.topic == "slow"] == [("slow", 50)]


async def test_a_stop_asked_before_the_run_began_stops_the_worker():
    app = make_app()

    @app.agent()
    async def idle(stream):
        async for _ in stream:
            pass

    worker = Worker(app, install_signal_handlers=False)
    worker.stop()
    with anyio.fail_after(5):
        await worker.run_async()
