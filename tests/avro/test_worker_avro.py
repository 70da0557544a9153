"""An app with Avro records: topic-named subjects, and the registry inside the worker."""
from __future__ import annotations

import json
import socket
import urllib.request

import anyio
import pytest

import streamkit
import streamkit.avro  # noqa: F401  (registers the avro codec)
from streamkit.cli.services import worker_services
from streamkit.worker import Worker

pytestmark = pytest.mark.anyio


class AvroRide(streamkit.Record, serializer="avro", namespace="taxi"):
    vendorId: int
    total_amount: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_worker_serves_the_registry_and_topics_register_under_topic_subjects():
    port = free_port()
    app = streamkit.App("avroapp", broker="memory://avroapp", store="memory://",
                        web_enabled=False, registry_port=port, commit_interval=0.05)
    rides = app.topic("avro-rides", value_type=AvroRide)
    seen = []

    @app.agent(rides)
    async def read(stream):
        async for ride in stream:
            seen.append(ride)

    worker = Worker(app, services=worker_services(app), install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(10):
            while not worker.ready:
                await anyio.sleep(0.02)
        await rides.send(value=AvroRide(vendorId=2, total_amount=9.5))
        with anyio.fail_after(10):
            while not seen:
                await anyio.sleep(0.02)

        def get(path: str):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as response:
                return json.loads(response.read())

        subjects = await anyio.to_thread.run_sync(get, "/subjects")
        latest = await anyio.to_thread.run_sync(
            get, "/subjects/avro-rides-value/versions/latest")
        worker.stop()
    assert seen == [AvroRide(vendorId=2, total_amount=9.5)]
    assert "avro-rides-value" in subjects
    assert latest["version"] == 1 and "vendorId" in latest["schema"]


async def test_an_app_without_avro_creates_no_schemas_topic():
    import streamkit.cli.registry_commands  # noqa: F401  (the command line imports it)
    app = streamkit.App("noavro", broker="memory://noavro", store="memory://",
                        web_enabled=False)
    app.topic("plain-rides")
    worker = Worker(app, services=worker_services(app), install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        await anyio.sleep(0.3)
        worker.stop()
    assert "_schemas" not in app.broker.list_topics()
    assert not app.uses_avro()
