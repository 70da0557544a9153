"""``streamkit table APP NAME`` shows a table-table join from its changelog, like any
table (after a real worker on ``log://`` committed it)."""
from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

from streamkit.cli.main import cli
from streamkit.worker import Worker

from .app_files import load_app_file

APP_SOURCE = '''
import streamkit

app = streamkit.App("clijoin", web_enabled=False, commit_interval=0.02,
                    topic_partitions=1)
trips = app.topic("trips", key_type=str)
counts = app.Table("trips_per_zone", default=int, key_type=str)
fares = app.Table("fares_per_zone", default=float, key_type=str)
per_zone = counts.join(fares, how="inner", name="zone_summary")


@app.agent(trips)
async def tally(stream):
    async for zone, fare in stream.items():
        counts[zone] += 1
        if fare is not None:
            fares[zone] += fare
'''


def test_the_table_command_shows_a_joined_table(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    app_file, module = load_app_file(tmp_path, monkeypatch, "join_app.py", APP_SOURCE)
    app = module["app"]

    async def run_worker() -> None:
        worker = Worker(app, install_signal_handlers=False)
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run_async)
            for zone, fare in [("132", 10.0), ("132", 2.5), ("7", None)]:
                await module["trips"].send(key=zone, value=fare)
            with anyio.fail_after(10):
                while len(list(module["per_zone"].items())) < 1 or \
                        len(list(module["counts"].items())) < 2:
                    await anyio.sleep(0.01)
            worker.stop()
    anyio.run(run_worker)

    result = CliRunner().invoke(cli, ["table", str(app_file), "zone_summary",
                                      "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    # inner: zone 7 has a count but no fare, so it is not in the join
    assert rows == [{"key": "132", "value": [2, 12.5]}]
