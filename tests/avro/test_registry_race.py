"""Two processes register schemas into one log at the same time: no leader, yet every
schema gets its own id, every subject its own version numbers, and a fresh replay
agrees with what each process was told."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from streamkit.avro import Schema, SchemaRegistry
from streamkit.transport import connect

REPO = Path(__file__).resolve().parents[2]

WRITER = """
import json, sys, time
from streamkit.avro import Schema, SchemaRegistry
from streamkit.transport import connect
logdir, who, count, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
reg = SchemaRegistry(connect("log://" + logdir))
time.sleep(max(0.0, start_at - time.time()))    # both writers start together
out = []
for i in range(count):
    fields = [{"name": f"f_{who}_{j}", "type": "int", "default": 0} for j in range(i + 1)]
    schema = Schema.parse({"type": "record", "name": "R", "fields": fields})
    for subject in (f"own-{who}", "shared"):
        done = reg.register(subject, schema)
        out.append([subject, done.version, done.id, schema.canonical])
print(json.dumps(out))
"""


def test_concurrent_writers_agree(tmp_path) -> None:
    logdir = str(tmp_path / "log")
    SchemaRegistry(connect("log://" + logdir)).broker.close()   # create _schemas first
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start_at = str(time.time() + 1.5)   # after both have imported and replayed
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, logdir, who, "15", start_at],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for who in ("a", "b")]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        results.extend(json.loads(out))

    reg = SchemaRegistry(connect("log://" + logdir))
    ids: dict[int, str] = {}
    for subject, version, schema_id, canonical in results:
        got = reg.get_version(subject, version)
        assert (got.id, got.schema.canonical) == (schema_id, canonical)
        assert ids.setdefault(schema_id, canonical) == canonical    # one schema per id
    assert len(ids) == 30                       # 30 distinct schemas, 30 ids
    assert reg.versions("shared") == list(range(1, 31))
    assert reg.versions("own-a") == list(range(1, 16))
    assert sorted(ids) == list(range(1, 31))
    assert Schema.parse(ids[1]).type == "record"
