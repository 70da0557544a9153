"""A streamkit agent reads records written by confluent-kafka's AvroSerializer, and
what the agent forwards is read by confluent's AvroDeserializer.

The registry server process and the app share one embedded log: the server keeps the
registry in its ``_schemas`` topic, and the app's avro codec reads that same topic.
"""
from __future__ import annotations

import anyio
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

import streamkit
from streamkit.avro import codec as avro_codec
from streamkit.avro import use_registry
from streamkit.worker import Worker

VALUE = """{"type": "record", "name": "RideValue", "namespace": "test.taxi", "fields": [
  {"name": "vendor_id", "type": "int"}, {"name": "passenger_count", "type": "int"},
  {"name": "trip_distance", "type": "float"}, {"name": "payment_type", "type": "int"},
  {"name": "total_amount", "type": "float"}]}"""


class RideValue(streamkit.Record, serializer="avro", namespace="test.taxi.RideValue"):
    vendor_id: int
    passenger_count: int
    trip_distance: float
    payment_type: int
    total_amount: float


def test_agent_reads_confluent_avro_and_confluent_reads_what_it_forwards(
        server, tmp_path) -> None:
    client = SchemaRegistryClient({"url": server["url"]})
    serialize = AvroSerializer(client, VALUE)
    ctx = SerializationContext("avro-rides", MessageField.VALUE)
    producer = streamkit.Producer(broker=server["broker"])
    for i in range(6):
        ride = {"vendor_id": i % 2 + 1, "passenger_count": 1, "trip_distance": 9.3,
                "payment_type": 1, "total_amount": 10.0 * i}
        producer.send("avro-rides", value=serialize(ride, ctx), key=str(i).encode())
        if i == 2:   # a JSON record on the Avro topic: dead-lettered, the stream goes on
            producer.send("avro-rides", value=b'{"vendor_id": 9}', key=b"json")
    producer.flush()
    producer.close()

    previous = avro_codec._default
    registry = use_registry(server["broker"])
    app = streamkit.App("avro-interop", broker=server["broker"], store="memory://",
                        datadir=str(tmp_path), web_enabled=False)
    rides = app.topic("avro-rides", key_type=str, value_type=RideValue)
    high = app.topic("avro-rides-high", key_type=str, value_type=RideValue)
    seen: list[RideValue] = []

    @app.agent(rides)
    async def watch(stream):
        async for ride in stream:
            seen.append(ride)
            if ride.total_amount >= 30:
                await high.send(key=str(ride.vendor_id), value=ride)

    async def run() -> None:
        worker = Worker(app, install_signal_handlers=False)
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run_async)
            with anyio.move_on_after(10):
                while len(seen) < 6:
                    await anyio.sleep(0.05)
            await anyio.sleep(0.3)
            worker.stop()

    try:
        anyio.run(run)
    finally:
        avro_codec._default = previous
        registry.close()
    assert [r.vendor_id for r in seen] == [1, 2, 1, 2, 1, 2]
    assert all(isinstance(r, RideValue) for r in seen)
    assert seen[0].trip_distance == 9.300000190734863      # Avro float is 32-bit
    assert [r.total_amount for r in seen] == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]

    # what the agent sent is Confluent-framed Avro that confluent's deserializer reads
    consumer = streamkit.Consumer("avro-rides-high", broker=server["broker"],
                                  group_id="confluent-reader", auto_offset_reset="earliest")
    deserialize = AvroDeserializer(client)
    records = []
    for _ in range(40):
        batch = consumer.poll(timeout_ms=100)
        for msgs in batch.values():
            records.extend(msgs)
        if len(records) >= 3:
            break
    consumer.close()
    got = [deserialize(m.value, SerializationContext("avro-rides-high", MessageField.VALUE))
           for m in records]
    assert sorted(r["total_amount"] for r in got) == [30.0, 40.0, 50.0]

    dlq = streamkit.Consumer("avro-interop-avro-rides-dlq", broker=server["broker"],
                             auto_offset_reset="earliest", consumer_timeout_ms=1000)
    [dead] = list(dlq)
    dlq.close()
    headers = dict(dead.headers)
    assert dead.value == b'{"vendor_id": 9}'
    assert b"not Confluent-framed Avro" in headers["streamkit.error"]
