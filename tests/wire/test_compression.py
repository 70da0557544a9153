"""Compressed record batches on the wire: what Kafka's clients send with gzip, snappy
(raw from librdkafka, xerial-framed from kafka-python), lz4 and zstd is in the log as
sent; records that do not inflate are CORRUPT_MESSAGE, and records that inflate past
the limit MESSAGE_TOO_LARGE, with nothing written either way."""
from __future__ import annotations

import gzip
import struct
from collections.abc import Callable

import crc32c
import pytest

from streamkit.types import TopicPartition
from streamkit.wire import compression
from tests.wire.conftest import Wire, record_batch
from tests.wire.test_records_protocol import TS, produce, records

cramjam = pytest.importorskip("cramjam")

CORRUPT_MESSAGE, MESSAGE_TOO_LARGE = 2, 10
XERIAL_HEADER = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)


def xerial_snappy(data: bytes, block: int = 1000) -> bytes:
    """snappy-java's framing, as the Java client and kafka-python write it: a header,
    then raw snappy blocks, each after its size."""
    out = XERIAL_HEADER
    for start in range(0, len(data), block):
        raw = bytes(cramjam.snappy.compress_raw(data[start:start + block]))
        out += struct.pack(">i", len(raw)) + raw
    return out


#: codec attribute -> how Kafka's clients compress the records block
COMPRESS = {1: gzip.compress, 2: lambda data: bytes(cramjam.snappy.compress_raw(data)),
            3: lambda data: bytes(cramjam.lz4.compress(data)),
            4: lambda data: bytes(cramjam.zstd.compress(data))}


Compress = Callable[[bytes], bytes]


def compressed(batch: bytes, codec: int, compress: Compress | None = None) -> bytes:
    """``batch`` (uncompressed) with its records compressed with ``codec``, and its
    length and CRC made to match."""
    body = (compress or COMPRESS[codec])(batch[61:])
    (attributes,) = struct.unpack_from(">h", batch, 21)
    after_crc = struct.pack(">h", attributes | codec) + batch[23:61] + body
    head = batch[12:17] + struct.pack(">I", crc32c.crc32c(after_crc))
    return struct.pack(">qi", 0, len(head) + len(after_crc)) + head + after_crc


@pytest.mark.parametrize("codec, compress", [
    (1, None), (2, None), (2, xerial_snappy), (3, None), (4, None)],
    ids=["gzip", "snappy-raw", "snappy-xerial", "lz4", "zstd"])
def test_each_codec_is_read(wire: Wire, codec: int, compress: Compress | None) -> None:
    wire.log.create_topic("orders", 1)
    sent = [(b"k%d" % i, b"value %d " % i * 40, [("h", b"x%d" % i)], TS + i)
            for i in range(30)]

    assert produce(wire, "orders", compressed(record_batch(sent), codec, compress)) == \
        (0, 0)
    got = wire.log.fetch(TopicPartition("orders", 0), 0)
    assert [(m.key, m.value, list(m.headers), m.timestamp) for m in got] == sent


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_records_that_do_not_inflate_are_corrupt_and_not_written(wire: Wire, codec: int
                                                                  ) -> None:
    wire.log.create_topic("orders", 1)
    # a batch whose CRC holds but whose records are not compressed as it says
    batch = record_batch(records(3), codec=codec)

    assert produce(wire, "orders", batch)[0] == CORRUPT_MESSAGE
    assert wire.log.offsets(TopicPartition("orders", 0)) == (0, 0)


def test_a_cut_xerial_block_is_corrupt(wire: Wire) -> None:
    wire.log.create_topic("orders", 1)
    batch = compressed(record_batch(records(20)), 2,
                       lambda data: xerial_snappy(data)[:-5])

    assert produce(wire, "orders", batch)[0] == CORRUPT_MESSAGE
    assert wire.log.offsets(TopicPartition("orders", 0)) == (0, 0)


@pytest.mark.parametrize("codec, compress", [
    (1, None), (2, None), (2, xerial_snappy), (3, None), (4, None)],
    ids=["gzip", "snappy-raw", "snappy-xerial", "lz4", "zstd"])
def test_records_that_inflate_past_the_limit_are_refused(
        wire: Wire, codec: int, compress: Callable[[bytes, int], bytes] | None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the limit made small, so that the test need not inflate 256 MiB
    monkeypatch.setattr(compression, "MAX_INFLATED", 1 << 20)
    wire.log.create_topic("orders", 1)
    big = [(b"k", bytes(300_000), [], TS + i) for i in range(4)]      # 1.2 MB of zeros
    batch = compressed(record_batch(big), codec,
                       compress and (lambda data: compress(data, 100_000)))

    assert len(batch) < 100_000
    assert produce(wire, "orders", batch)[0] == MESSAGE_TOO_LARGE
    assert wire.log.offsets(TopicPartition("orders", 0)) == (0, 0)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_kafka_python_compressed_records_are_read(wire: Wire, codec: str) -> None:
    kafka = pytest.importorskip("kafka")
    codecs = pytest.importorskip("kafka.codec")
    if not getattr(codecs, f"has_{codec}")():
        pytest.skip(f"kafka-python has no {codec} library here (the test extra has it)")
    wire.log.create_topic("rides", 1)
    producer = kafka.KafkaProducer(bootstrap_servers=[wire.bootstrap],
                                   compression_type=codec, linger_ms=20)
    try:
        futures = [producer.send("rides", key=b"k%d" % i, value=b"ride %d " % i * 20,
                                 headers=[("n", b"%d" % i)], timestamp_ms=TS + i)
                   for i in range(40)]
        producer.flush(10)
        offsets = [f.get(timeout=10).offset for f in futures]
    finally:
        producer.close(5)

    assert offsets == list(range(40))
    got = wire.log.fetch(TopicPartition("rides", 0), 0, max_records=100)
    assert [(m.key, m.value, list(m.headers), m.timestamp) for m in got] == \
        [(b"k%d" % i, b"ride %d " % i * 20, [("n", b"%d" % i)], TS + i) for i in range(40)]
