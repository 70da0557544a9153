"""A command group's options work before and after its subcommand (``topics create x
--broker URL`` as ``topics --broker URL create x``); after it wins when both are given."""
from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

import streamkit
from streamkit.cli import cli
from streamkit.transport import connect


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("STREAMKIT_DATADIR", "STREAMKIT_BROKER", "STREAMKIT_DEBUG",
                 "STREAMKIT_SCHEMA_REGISTRY_URL"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def topic_names(root) -> set[str]:
    broker = connect("log://", datadir=str(root))
    try:
        return set(broker.list_topics())
    finally:
        broker.close()


def test_topics_create_takes_broker_and_datadir_after_the_subcommand(runner, tmp_path):
    after = tmp_path / "after"
    result = runner.invoke(cli, ["topics", "create", "demo_1", "--broker", "log://",
                                 "--datadir", str(after)])
    assert result.exit_code == 0, result.output
    assert topic_names(after) == {"demo_1"}
    assert not (tmp_path / "stores").exists()       # not the default data dir


def test_after_the_subcommand_wins_over_before(runner, tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    result = runner.invoke(cli, ["topics", "--datadir", str(before), "create", "demo_2",
                                 "--datadir", str(after)])
    assert result.exit_code == 0, result.output
    assert topic_names(after) == {"demo_2"}
    assert not before.exists()
    # before the subcommand alone still works, and delete/alter take them after too
    result = runner.invoke(cli, ["topics", "--datadir", str(after), "alter", "demo_2",
                                 "--config", "retention.ms=1000"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["topics", "delete", "demo_2", "--datadir", str(after)])
    assert result.exit_code == 0, result.output
    assert topic_names(after) == set()


def test_debug_after_the_subcommand_shows_the_traceback(runner, tmp_path):
    args = ["topics", "create", "demo", "--datadir", str(tmp_path)]
    assert runner.invoke(cli, args).exit_code == 0
    quiet = runner.invoke(cli, args)
    assert quiet.exit_code == 1 and "already exists" in quiet.output
    loud = runner.invoke(cli, [*args, "--debug"])
    assert loud.exception is not None and "already exists" in str(loud.exception)
    assert type(loud.exception).__name__ == "TopicExists"   # not the one-line error


def test_schemas_options_after_the_subcommand(runner, tmp_path):
    pytest.importorskip("fastavro")
    log = f"log://{tmp_path}/log"
    schema = tmp_path / "ride.avsc"
    schema.write_text(json.dumps({"type": "record", "name": "Ride",
                                  "fields": [{"name": "id", "type": "int"}]}))
    done = runner.invoke(cli, ["schemas", "register", "rides-value", str(schema),
                               "--broker", log])
    assert done.exit_code == 0, done.output
    listed = runner.invoke(cli, ["schemas", "--broker", "log://elsewhere", "list",
                                 "--broker", log])
    assert listed.exit_code == 0, listed.output
    assert listed.output.startswith("rides-value\t")


def _walk(group: click.Group, inherited: set[str]):
    own = {o for p in group.params if isinstance(p, click.Option) and not p.is_eager
           for o in p.opts}
    for name, command in group.commands.items():
        yield group, name, command, inherited | own
        if isinstance(command, click.Group):
            yield from _walk(command, inherited | own)


def test_every_group_option_is_accepted_after_every_subcommand():
    for group, name, command, wanted in _walk(cli, set()):
        have = {o for p in command.params for o in p.opts}
        assert wanted <= have, f"{group.name} {name} lacks {wanted - have}"


def test_an_app_scripts_debug_after_the_subcommand(tmp_path, capsys):
    app = streamkit.App("opts-app", broker="memory://opts", store="memory://",
                        web_enabled=False)
    with pytest.raises(SystemExit) as done:
        app.main(["agents", "--debug"])
    assert done.value.code == 0
    assert "Agents" in capsys.readouterr().out
