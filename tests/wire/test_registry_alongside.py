"""``streamkit broker --registry-port``: one process serves the Kafka protocol and the
schema registry from the same log, as the course's docker-compose did with Kafka and a
Schema Registry. confluent-kafka's AvroSerializer and AvroDeserializer use both; the
broker logs a line per connection (debug) and its rates; a signal stops both."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("confluent_kafka.schema_registry.avro")

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import (AvroDeserializer,
                                                  AvroSerializer)
from confluent_kafka.serialization import MessageField, SerializationContext

from streamkit.avro.registry import SchemaRegistry
from streamkit.transport import connect
from tests.wire.test_broker_command import STREAMKIT, free_port, wait_for_line

pytestmark = pytest.mark.slow          # a real broker process

KEY = """{"type": "record", "name": "RideKey", "namespace": "taxi",
          "fields": [{"name": "vendor", "type": "int"}]}"""
RIDE = """{"type": "record", "name": "Ride", "namespace": "taxi",
           "fields": [{"name": "vendor", "type": "int"},
                      {"name": "total_amount", "type": "double"}]}"""


def start_broker(tmp_path: Path, *options: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("STREAMKIT_DATADIR", None)
    return subprocess.Popen([*STREAMKIT, "broker", *options], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return err


def course_avro_round_trip(bootstrap: str, registry_url: str) -> list[tuple[dict, dict]]:
    """The course's AvroProducer and AvroConsumer (confluent-kafka's legacy Avro
    clients, ``schema.registry.url`` in their config): (key, value) of what it read."""
    from confluent_kafka import avro
    from confluent_kafka.avro import AvroConsumer, AvroProducer

    config = {"bootstrap.servers": bootstrap, "schema.registry.url": registry_url}
    key_schema = avro.loads(KEY)
    producer = AvroProducer(config, default_key_schema=key_schema,
                            default_value_schema=avro.loads(RIDE))
    for i in range(3):
        producer.produce(topic="rides_course", key={"vendor": i},
                         value={"vendor": i, "total_amount": 1.5 * i})
    assert producer.flush(20) == 0
    consumer = AvroConsumer({**config, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign([TopicPartition("rides_course", 0, 0)])      # (no groups yet)
    got = []
    for _ in range(50):
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            got.append((message.key(), message.value()))
        if len(got) == 3:
            break
    consumer.close()
    return got


@pytest.mark.filterwarnings("ignore:Avro(Producer|Consumer) has been deprecated")
def test_avro_through_the_registry_and_the_broker_of_one_process(tmp_path: Path) -> None:
    port, registry_port = free_port(), free_port()
    proc = start_broker(tmp_path, "--port", str(port), "--registry-port", str(registry_port),
                        "--auto-create-topics", "--status-interval", "0.3",
                        "--loglevel", "debug")
    try:
        wait_for_line(proc, rf"schema registry on http://127.0.0.1:{registry_port} ")
        bootstrap = f"127.0.0.1:{port}"
        client = SchemaRegistryClient({"url": f"http://127.0.0.1:{registry_port}"})
        serialize = AvroSerializer(client, RIDE)
        rides = [{"vendor": i % 3, "total_amount": 10.5 + i} for i in range(5)]
        producer = Producer({"bootstrap.servers": bootstrap})
        for ride in rides:
            producer.produce("rides_avro", value=serialize(
                ride, SerializationContext("rides_avro", MessageField.VALUE)))
        assert producer.flush(20) == 0

        deserialize = AvroDeserializer(client)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition("rides_avro", 0, 0)])
        got = []
        for _ in range(50):
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                got.append(deserialize(message.value(),
                                       SerializationContext("rides_avro", MessageField.VALUE)))
            if len(got) == len(rides):
                break
        consumer.close()
        assert got == rides
        assert course_avro_round_trip(bootstrap, f"http://127.0.0.1:{registry_port}") == \
            [({"vendor": i}, {"vendor": i, "total_amount": 1.5 * i}) for i in range(3)]

        # the debug line of a connection, and the rates of the status lines
        seen = wait_for_line(proc, r"DEBUG streamkit.wire: connection from \('127.0.0.1'")
        seen += wait_for_line(proc, r"INFO streamkit.wire: \d+ connections, \d+ requests "
                                    r"in 0.3 s; produce \d+ records/s, fetch [1-9]")
        assert re.search(r"produce [1-9]\d* records/s", seen), seen
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    with pytest.raises(OSError):                 # the registry stopped with the broker
        socket.create_connection(("127.0.0.1", registry_port), timeout=2).close()
    # the schema is in the log's _schemas topic, where `streamkit registry serve` keeps it
    with SchemaRegistry(connect("log://", datadir=tmp_path / "stores"),
                        owns_broker=True) as registry:
        assert registry.subjects() == ["rides_avro-value", "rides_course-key",
                                       "rides_course-value"]


def test_a_taken_registry_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start_broker(tmp_path, "--port", "0", "--registry-port", str(port))
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"schema registry: cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("hidden", "extra"), [("starlette", "web"), ("fastavro", "avro")])
def test_without_the_registrys_extras_it_says_which_to_add(tmp_path: Path, hidden: str,
                                                           extra: str) -> None:
    code = f"import sys; sys.modules[{hidden!r}] = None; from streamkit.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", code, "broker", "--port", "0",
                           "--registry-port", "0"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert f"streamkit broker --registry-port needs the {extra} extra: pip install" in \
        done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "stores").exists()          # nothing created before the check
