"""The broker commands on kafka:// (tansu and streamkit broker, Kafka-protocol brokers),
unchanged."""
from __future__ import annotations

import json
import re
import uuid

import pytest
from click.testing import CliRunner

from streamkit.cli import cli

pytestmark = pytest.mark.kafka


def test_topics_send_tail_groups_on_kafka(tansu, tmp_path, monkeypatch):
    pytest.importorskip("confluent_kafka")
    monkeypatch.setenv("STREAMKIT_BROKER", tansu)
    runner = CliRunner()
    topic = f"cli-{uuid.uuid4().hex[:8]}"

    def run(*args: str):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    run("topics", "create", topic, "--partitions", "3")
    assert re.search(rf"│ {topic}\s*│ 3\s*│", run("topics"))
    assert run("send", topic, '{"n": 1}', "--key", "a", "--partition", "1") == f"{topic}[1]@0\n"
    run("send", topic, '{"n": 2}', "--key", "a", "--partition", "1")
    lines = run("tail", topic, "--from-beginning", "-n", "2", "--group", "cli-g",
                "--timeout", "20").splitlines()
    assert [json.loads(x)["value"] for x in lines] == [{"n": 1}, {"n": 2}]
    assert re.search(rf"│ cli-g\s*│ {topic}\s*│ 1\s*│ 2\s*│ 2\s*│ 0\s*│", run("groups"))
    run("topics", "delete", topic)


def test_tail_wait_on_kafka(tansu, tmp_path):
    """``tail --wait`` polls a Kafka cluster for the topic as it polls the log."""
    pytest.importorskip("confluent_kafka")
    import os
    import subprocess
    import sys
    topic = f"cli-wait-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, STREAMKIT_BROKER=tansu, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-c", "from streamkit.cli import main; main()",
                             "tail", topic, "--wait", "-n", "1", "--format", "raw",
                             "--timeout", "60"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith(f"waiting for topic {topic!r} on kafka://")
        result = CliRunner().invoke(cli, ["send", topic, "hello", "--broker", tansu])
        assert result.exit_code == 0, result.output
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out == "hello\n"
