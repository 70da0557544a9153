"""``streamkit table APP NAME`` shows a versioned table's latest values (a key whose
latest version is a delete is not shown), after a real worker on ``log://`` committed
them."""
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
from datetime import timedelta

import streamkit

app = streamkit.App("cliversioned", web_enabled=False, commit_interval=0.02,
                    topic_partitions=1)
updates = app.topic("price_updates", key_type=str)
prices = app.Table("prices", key_type=str, versioned=timedelta(hours=1))


@app.agent(updates)
async def update(stream):
    async for key, value in stream.items():
        prices[key] = value
'''


def test_the_table_command_shows_the_latest_versions(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch
                                                     ) -> None:
    app_file, module = load_app_file(tmp_path, monkeypatch, "versioned_app.py", APP_SOURCE)
    app = module["app"]

    async def run_worker() -> None:
        worker = Worker(app, install_signal_handlers=False)
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run_async)
            # k: the latest is the one of the largest timestamp, not the last written
            for key, value, ts in [("k", "new", 300), ("k", "old", 100), ("j", "x", 100),
                                   ("j", None, 200)]:
                await module["updates"].send(key=key, value=value, timestamp=ts)
            with anyio.fail_after(10):
                while len(module["prices"].history("j")) < 2:
                    await anyio.sleep(0.01)
            worker.stop()
    anyio.run(run_worker)

    runner = CliRunner()
    result = runner.invoke(cli, ["table", str(app_file), "prices", "--format", "json"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.output.splitlines()] == [
        {"key": "k", "value": "new"}]
    result = runner.invoke(cli, ["table", str(app_file), "prices", "j"])
    assert result.exit_code == 1 and "table 'prices' has no key 'j'" in result.output
