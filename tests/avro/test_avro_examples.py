"""examples/avro_producer.py and examples/avro_consumer.py as real processes, with the
registry in the log's _schemas topic and through `streamkit registry serve`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, cwd) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("STREAMKIT_SCHEMA_REGISTRY_URL", None)
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_producer_then_consumer_on_the_log(tmp_path) -> None:
    out = run(str(REPO / "examples/avro_producer.py"), "--count", "6", cwd=tmp_path)
    assert "sent 6 rides" in out and "key schema id 1, value schema id 2" in out
    out = run(str(REPO / "examples/avro_consumer.py"), "--timeout", "1", cwd=tmp_path)
    assert "read 6 rides" in out
    assert "key={'vendor_id': 1} distance=0.699999988079071" in out   # Avro float


def test_producer_and_consumer_through_the_rest_registry(server, tmp_path) -> None:
    broker = server["broker"]
    out = run(str(REPO / "examples/avro_producer.py"), "--count", "3", "--broker", broker,
              "--registry", server["url"], "--topic", "ex-rides", cwd=tmp_path)
    assert "sent 3 rides to ex-rides" in out
    out = run(str(REPO / "examples/avro_consumer.py"), "--timeout", "1", "--broker", broker,
              "--registry", server["url"], "--topic", "ex-rides", cwd=tmp_path)
    assert "read 3 rides" in out
