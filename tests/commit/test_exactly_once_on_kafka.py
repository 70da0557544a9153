"""processing_guarantee="exactly_once" on kafka:// (tansu): an agent's sends, its
table's changelog records and its input offsets are committed in one transaction.

tansu still delivers aborted records to read_committed consumers, so what an abort
hides cannot be shown here (docs/kafka.md); these tests show what commits together.
"""
from __future__ import annotations

import json
import uuid

import anyio
import pytest

import streamkit
from streamkit.types import TopicPartition
from streamkit.worker import Worker

from tests.commit.relay import add_relay

pytestmark = [pytest.mark.kafka, pytest.mark.anyio]


@pytest.fixture(autouse=True)
def datadir_in_tmp(tmp_path, monkeypatch):
    """The apps' data dirs (where a worker records the topics it creates) in tmp, not
    in the repository's stores/."""
    monkeypatch.setenv("STREAMKIT_DATADIR", str(tmp_path))


@pytest.fixture
def anyio_backend():
    return "asyncio"


def make_app(url: str, name: str):
    app = streamkit.App(name, broker=url, store="memory://", web_enabled=False,
                        commit_interval=0.2, topic_partitions=2, session_timeout=3.0,
                        processing_guarantee="exactly_once",
                        # eager joins are quicker on tansu (decision 601)
                        broker_config={"consumer": {"partition.assignment.strategy": "range"}})
    source, counts = add_relay(app, name)
    return app, source, counts


def read_all(app, topic: str) -> list:
    broker = app.broker
    out = []
    for p in range(broker.partition_count(topic) or 0):
        start, end = broker.offsets(TopicPartition(topic, p))
        offset = start
        while offset < end:
            batch = broker.fetch(TopicPartition(topic, p), offset, 1000, timeout=1.0)
            if not batch:
                break
            out.extend(batch)
            offset = batch[-1].offset + 1
    return out


async def test_sends_changelog_and_offsets_commit_together(tansu):
    name = f"eos-{uuid.uuid4().hex[:8]}"
    app, source, counts = make_app(tansu, name)
    for i in range(50):
        await source.send(key=str(i), value=i)
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(60):
            while worker.app.monitor.commits < 1 or sum(
                    o.committed or 0 for o in app.broker.group_offsets(name)
                    if o.topic == f"{name}-in") < 50:
                await anyio.sleep(0.1)
        worker.stop()
    assert worker.transaction is None  # closed with the worker
    outputs = sorted(json.loads(m.value) for m in read_all(app, f"{name}-out"))
    assert outputs == list(range(50))
    latest = {}   # a key is counted in the partition of each event: sum the partitions
    for m in read_all(app, f"{name}-counts-changelog"):
        latest[(m.partition, json.loads(m.key))] = json.loads(m.value)
    assert {k: sum(v for (_, key), v in latest.items() if key == k) for k in (0, 1)} == {
        0: 25, 1: 25}

