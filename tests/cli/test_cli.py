"""The ``streamkit`` command line through click's runner (in process)."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

import streamkit
from streamkit.cli import cli
from streamkit.cli.output import box_table
from streamkit.internal_topics import TopicRecord

APP_SOURCE = '''
import streamkit

app = streamkit.App("cli-app", web_enabled=False)


class TaxiRide(streamkit.Record, serializer="json"):
    vendorId: int
    total_amount: float = 0.0


rides = app.topic("yellow_taxi_ride.json", key_type=str, value_type=TaxiRide)
vendor_rides = app.Table("vendor_rides", default=int, help="rides per vendor")
per_minute = app.Table("per_minute", default=int).tumbling(60.0)


@app.agent(rides)
async def start_reading(stream):
    async for ride in stream:
        print(ride)


@app.agent(rides, name="count")
async def count_rides(stream):
    """Count rides per vendor."""
    async for ride in stream.group_by(TaxiRide.vendorId):
        vendor_rides[ride.vendorId] += 1

other = app
'''


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STREAMKIT_DATADIR", str(tmp_path / "stores"))
    monkeypatch.delenv("STREAMKIT_BROKER", raising=False)
    monkeypatch.delenv("STREAMKIT_DEBUG", raising=False)
    return CliRunner()


@pytest.fixture
def app_file(tmp_path):
    path = tmp_path / "taxi_cli_app.py"
    path.write_text(APP_SOURCE)
    return path


def run(runner, *args, input=None):
    return runner.invoke(cli, list(args), input=input, catch_exceptions=False)


def test_box_table_shape():
    text = box_table(["name", "topic", "help"], [("@a", "t", None)])
    assert text.splitlines() == [
        "┌──────┬───────┬───────┐",
        "│ name │ topic │ help  │",
        "├──────┼───────┼───────┤",
        "│ @a   │ t     │ <N/A> │",
        "└──────┴───────┴───────┘",
    ]


@pytest.mark.parametrize("spec", ["{path}", "{path}:app", "{path}:other",
                                  "taxi_cli_app", "taxi_cli_app:app"])
def test_agents_lists_each_agent_like_faust(runner, app_file, spec):
    result = run(runner, "agents", spec.format(path=app_file))
    assert result.exit_code == 0, result.output
    assert re.search(r"│ @start_reading\s*│ yellow_taxi_ride.json\s*│ <N/A>\s*│", result.output)
    assert re.search(r"│ @count\s*│ yellow_taxi_ride.json\s*│ Count rides per vendor\.\s*│",
                     result.output)


def test_tables_lists_default_windowing_changelog_and_help(runner, app_file):
    result = run(runner, "tables", str(app_file))
    assert result.exit_code == 0, result.output
    assert re.search(r"│ vendor_rides\s*│ int\s*│ <N/A>\s*│ cli-app-vendor_rides-changelog\s*│"
                     r" rides per vendor", result.output)
    assert re.search(r"│ per_minute\s*│ int\s*│ TumblingWindow\(size=60.0.*relative to stream",
                     result.output)


@pytest.mark.parametrize("spec, message", [
    ("no_such_module", "no module named 'no_such_module'"),
    ("missing/file.py", "no such file 'missing/file.py'"),
    ("taxi_cli_app:nope", "has no attribute 'nope'"),
    ("taxi_cli_app:TaxiRide", "not a streamkit.App"),
])
def test_unknown_app_is_one_line_and_exit_1(runner, app_file, spec, message):
    result = runner.invoke(cli, ["agents", spec])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_topics_create_list_delete(runner):
    result = run(runner, "topics", "create", "rides", "--partitions", "3",
                 "--config", "retention.ms=3600000", "--config", "cleanup.policy=compact")
    assert result.exit_code == 0, result.output
    listing = run(runner, "topics").output
    assert re.search(r"│ rides\s*│ 3\s*│ 0 0 0\s*│ 0 0 0\s*│ 0\s*│ 1h\s*│ compact\s*│", listing)
    again = runner.invoke(cli, ["topics", "create", "rides"])
    assert again.exit_code == 1 and "rides" in again.output
    assert run(runner, "topics", "delete", "rides").exit_code == 0
    assert "rides" not in run(runner, "topics").output.split("cleanup.policy", 1)[1]
    missing = runner.invoke(cli, ["topics", "delete", "rides"])
    assert missing.exit_code == 1 and "no such topic 'rides'" in missing.output


def test_topics_config_must_be_key_value(runner):
    result = runner.invoke(cli, ["topics", "create", "x", "--config", "retention.ms"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


def test_send_then_tail_json_and_raw(runner):
    sent = run(runner, "send", "greetings", '{"hello": 1}', "--key", "k1")
    assert sent.exit_code == 0 and re.fullmatch(r"greetings\[0\]@0\n", sent.output)
    stdin = run(runner, "send", "greetings", "-", input="one\ntwo\n")
    assert stdin.output.splitlines() == ["greetings[0]@1", "greetings[0]@2"]
    tail = run(runner, "tail", "greetings", "--from-beginning", "-n", "3")
    lines = [json.loads(line) for line in tail.output.splitlines()]
    assert [m["offset"] for m in lines] == [0, 1, 2]
    assert lines[0]["key"] == "k1" and lines[0]["value"] == {"hello": 1}
    assert lines[1]["value"] == "one" and lines[1]["key"] is None
    assert lines[0]["timestamp"].endswith("Z")
    raw = run(runner, "tail", "greetings", "--from-beginning", "-n", "3", "--format", "raw")
    assert raw.output.splitlines() == ['{"hello": 1}', "one", "two"]


def test_send_to_a_partition_and_refuse_a_missing_one(runner):
    run(runner, "topics", "create", "p4", "--partitions", "4")
    assert run(runner, "send", "p4", "x", "--partition", "2").output == "p4[2]@0\n"
    bad = runner.invoke(cli, ["send", "p4", "x", "--partition", "9"])
    assert bad.exit_code == 2 and "0..3" in bad.output


def test_tail_with_a_group_commits_and_groups_shows_lag(runner):
    for i in range(5):
        run(runner, "send", "events", str(i))
    first = run(runner, "tail", "events", "--group", "g1", "--from-beginning", "-n", "3")
    assert [json.loads(x)["value"] for x in first.output.splitlines()] == [0, 1, 2]
    groups = run(runner, "groups").output
    assert re.search(r"│ g1\s*│ events\s*│ 0\s*│ 3\s*│ 5\s*│ 2\s*│", groups), groups
    rest = run(runner, "tail", "events", "--group", "g1", "--timeout", "0.5")
    assert [json.loads(x)["value"] for x in rest.output.splitlines()] == [3, 4]


def test_tail_timeout_stops_an_idle_tail(runner):
    run(runner, "send", "quiet", "x")
    result = run(runner, "tail", "quiet", "--timeout", "0.3")
    assert result.exit_code == 0 and result.output == ""


def test_errors_are_one_line_without_traceback(runner):
    run(runner, "send", "other", "x")          # a log, without topic "nope"
    for args, message in [
        (["tail", "nope"], "no such topic 'nope'"),
        (["topics", "--broker", "foo"], "broker URL 'foo' has no scheme"),
        (["topics", "--broker", "zookeeper://x"], "unknown scheme 'zookeeper'"),
        (["groups", "--broker", "nope"], "has no scheme"),
    ]:
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_debug_shows_the_exception(runner):
    run(runner, "send", "other", "x")
    result = runner.invoke(cli, ["--debug", "tail", "nope"])
    assert result.exit_code == 1
    assert isinstance(result.exception, streamkit.errors.UnknownTopic)


def test_broker_and_datadir_come_from_the_environment(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMKIT_BROKER", f"log://{tmp_path / 'elsewhere'}")
    run(runner, "send", "envtopic", "v")
    assert (tmp_path / "elsewhere").is_dir()
    assert "envtopic" in run(runner, "topics").output
    monkeypatch.delenv("STREAMKIT_BROKER")
    assert "envtopic" not in run(runner, "topics").output


def test_reset_deletes_offsets_tables_and_changelogs_after_confirmation(
        runner, app_file, tmp_path):
    datadir = tmp_path / "stores"
    repartition = "cli-app-yellow_taxi_ride.json-vendorId-repartition"
    producer = streamkit.Producer(broker="log://", datadir=str(datadir))
    for name in ("yellow_taxi_ride.json", "cli-app-vendor_rides-changelog", repartition,
                 "cli-app-count-repartition", "unrelated"):
        producer.send(name, value=b"{}")
    producer.close()
    # what a worker writes down before creating its group_by topic
    TopicRecord(datadir / "cli-app").add("internal", [repartition])
    consumer = streamkit.Consumer("yellow_taxi_ride.json", broker="log://",
                                  datadir=str(datadir), group_id="cli-app",
                                  auto_offset_reset="earliest", consumer_timeout_ms=200)
    list(consumer)
    consumer.close()
    (datadir / "cli-app" / "tables").mkdir()
    assert "cli-app" in run(runner, "groups").output

    declined = runner.invoke(cli, ["reset", str(app_file)], input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert (datadir / "cli-app").exists()

    result = run(runner, "reset", str(app_file), input="y\n")
    assert result.exit_code == 0, result.output
    assert "cli-app-vendor_rides-changelog" in result.output
    assert not (datadir / "cli-app").exists()
    topics = run(runner, "topics").output
    assert "cli-app-vendor_rides-changelog" not in topics
    assert repartition not in topics
    # named like one of the app's topics but neither recorded nor a table's changelog
    assert "cli-app-count-repartition" in topics
    assert "yellow_taxi_ride.json" in topics and "unrelated" in topics
    assert "cli-app" not in run(runner, "groups").output
    # --yes skips the question; nothing left to delete is fine
    assert run(runner, "reset", str(app_file), "--yes").exit_code == 0


def test_app_main_gives_a_script_its_commands(app_file, capsys):
    from streamkit.cli.loading import load_app
    app = load_app(str(app_file))
    with pytest.raises(SystemExit) as exit_info:
        app.main(["agents"])
    assert exit_info.value.code == 0
    assert "@start_reading" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        app.main(["--help"])
    out = capsys.readouterr().out
    for command in ("worker", "agents", "tables", "reset"):
        assert command in out


def test_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    for command in ("worker", "agents", "tables", "topics", "send", "tail", "groups",
                    "reset", "demo"):
        assert re.search(rf"^\s+{command}\s", result.output, re.M), command


def test_avro_commands_are_attached_when_available():
    pytest.importorskip("fastavro")
    try:
        import streamkit.cli.registry_commands  # noqa: F401
    except ImportError:
        pytest.skip("streamkit.cli.registry_commands not importable")
    result = CliRunner().invoke(cli, ["--help"])
    assert "registry" in result.output and "schemas" in result.output


def test_worker_help_has_the_issue_options():
    result = CliRunner().invoke(cli, ["worker", "--help"])
    for option in ("--broker", "--loglevel", "--concurrency", "--web-port", "--web-host"):
        assert option in result.output


def test_send_from_stdin_in_batches_keeps_order(runner):
    lines = "".join(f"{i}\n" for i in range(2500))
    result = run(runner, "send", "many", "-", input=lines)
    assert result.output.splitlines() == [f"many[0]@{i}" for i in range(2500)]
    tail = run(runner, "tail", "many", "--from-beginning", "-n", "2500", "--format", "raw")
    assert tail.output.splitlines() == [str(i) for i in range(2500)]


def test_listing_commands_do_not_create_a_log_that_is_not_there(tmp_path):
    from click.testing import CliRunner
    from streamkit.cli import cli
    missing = tmp_path / "typo" / "log"
    for args in (["groups", "-b", f"log://{missing}"], ["topics", "-b", f"log://{missing}"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1
        assert f"no embedded log at {missing}" in result.output
    assert not (tmp_path / "typo").exists()
