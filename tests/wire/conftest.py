"""A Kafka-protocol server over a real embedded log on disk, started in this process on
a free port (its event loop in a portal thread, so that blocking clients can call it),
and a raw Kafka client that sends any request and reads its response with kio."""
from __future__ import annotations

import datetime
import gzip
import io
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import crc32c
import pytest
from anyio.from_thread import start_blocking_portal

from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer

from streamkit.transport import connect
from streamkit.transport.base import Broker
from streamkit.wire import WireServer


@dataclass
class Wire:
    """A running server: its log (on disk under ``datadir``) and its address."""

    server: WireServer
    log: Broker
    datadir: Path
    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_wire(tmp_path: Path, **options: Any) -> Iterator[Wire]:
    log = connect("log://", datadir=tmp_path)
    server = WireServer(log, host="127.0.0.1", port=0, **options)
    with start_blocking_portal() as portal:
        future, port = portal.start_task(server.serve)
        try:
            yield Wire(server, log, tmp_path, port)
        finally:
            future.cancel()
    log.close()


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[Wire]:
    yield from start_wire(tmp_path)


def frame_of(api_key: int, version: int, body: Any, correlation_id: int = 1,
             client_id: str | None = "test") -> bytes:
    """A whole request frame (size prefix included) of ``body``, a kio request."""
    cls = load_request_schema(api_key, version)
    header_cls = cls.__header_schema__
    out = io.BytesIO()
    entity_writer(header_cls)(out, header_cls(request_api_key=api_key,
                                              request_api_version=version,
                                              correlation_id=correlation_id,
                                              client_id=client_id))
    entity_writer(cls)(out, body)
    data = out.getvalue()
    return struct.pack(">i", len(data)) + data


def header_only(api_key: int, version: int, correlation_id: int = 1) -> bytes:
    """A request frame with a v1 header and no body (enough for an unsupported one)."""
    data = struct.pack(">hhih", api_key, version, correlation_id, -1)
    return struct.pack(">i", len(data)) + data


def read_frame(sock: socket.socket) -> bytes | None:
    """One response frame (without its size), or None if the server closed."""
    size = _read_exactly(sock, 4)
    if size is None:
        return None
    data = _read_exactly(sock, struct.unpack(">i", size)[0])
    assert data is not None, "connection closed inside a frame"
    return data


def _read_exactly(sock: socket.socket, count: int) -> bytes | None:
    chunks = b""
    while len(chunks) < count:
        chunk = sock.recv(count - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return chunks


def decode_response(data: bytes, api_key: int, version: int) -> tuple[int, Any]:
    """(correlation id, kio response) of a response frame."""
    cls = load_response_schema(api_key, version)
    header, used = entity_reader(cls.__header_schema__)(data, 0)
    body, _size = entity_reader(cls)(data, used)
    return header.correlation_id, body


def closed_by_server(sock: socket.socket, timeout: float = 5.0) -> bool:
    """Whether the server closed ``sock`` (reads EOF within ``timeout``)."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


# -- record APIs: request bodies and record batches, written here independently of the
# -- server's own batch code (so that a test checks it against Kafka's format) ----------
def kio_body(cls: type[Any], **values: Any) -> Any:
    """``cls`` (a kio class) from ``values``, keeping the fields this version has."""
    names = cls.__dataclass_fields__
    return cls(**{k: v for k, v in values.items() if k in names})


def kio_module(api_key: int, version: int) -> Any:
    cls = load_request_schema(api_key, version)
    return cls, __import__(cls.__module__, fromlist=["_"])


def _zigzag(value: int) -> bytes:
    value = (value << 1) ^ (value >> 63)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _sized(data: bytes | None) -> bytes:
    return _zigzag(-1) if data is None else _zigzag(len(data)) + data


Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]], int]


def record_batch(records: list[Record], *, producer_id: int = -1, epoch: int = -1,
                 sequence: int = -1, gzip_records: bool = False, codec: int | None = None
                 ) -> bytes:
    """A record batch v2 of ``records`` (key, value, headers, timestamp ms)."""
    base_ts = records[0][3]
    body = b""
    for delta, (key, value, headers, ts) in enumerate(records):
        record = b"\0" + _zigzag(ts - base_ts) + _zigzag(delta) + _sized(key) + \
            _sized(value) + _zigzag(len(headers)) + \
            b"".join(_sized(h.encode()) + _sized(v) for h, v in headers)
        body += _zigzag(len(record)) + record
    attributes = 1 if gzip_records else (codec or 0)
    if gzip_records:
        body = gzip.compress(body)
    after_crc = struct.pack(">hiqqqhii", attributes, len(records) - 1, base_ts,
                            max(r[3] for r in records), producer_id, epoch, sequence,
                            len(records)) + body
    crc = crc32c.crc32c(after_crc)
    head = struct.pack(">ibI", 0, 2, crc)                # leader epoch, magic, crc
    return struct.pack(">qi", 0, len(head) + len(after_crc)) + head + after_crc


def read_batches(data: bytes) -> list[tuple[int, bytes | None, bytes | None, int]]:
    """(offset, key, value, timestamp) of each record of uncompressed v2 batches."""
    out = []
    pos = 0
    while pos + 61 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        base_ts, = struct.unpack_from(">q", data, pos + 27)
        count, = struct.unpack_from(">i", data, pos + 57)
        view = _Varints(data, pos + 61)
        for _ in range(count):
            view.varint()                                  # length
            view.pos += 1                                  # attributes
            ts = base_ts + view.varint()
            offset = base + view.varint()
            key, value = view.sized(), view.sized()
            for _h in range(view.varint()):
                view.sized()
                view.sized()
            out.append((offset, key, value, ts))
        pos += 12 + length
    return out


class _Varints:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def varint(self) -> int:
        shift = result = 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (result >> 1) ^ -(result & 1)
            shift += 7

    def sized(self) -> bytes | None:
        size = self.varint()
        if size < 0:
            return None
        self.pos += size
        return self.data[self.pos - size:self.pos]


def produce_body(version: int, topic: str, partition: int, records: bytes,
                 acks: int = -1) -> Any:
    cls, module = kio_module(0, version)
    data = module.PartitionProduceData(index=partition, records=records)
    return kio_body(cls, transactional_id=None, acks=acks,
                    timeout=datetime.timedelta(seconds=5),
                    topic_data=(module.TopicProduceData(name=topic,
                                                        partition_data=(data,)),))


def fetch_body(version: int, topic: str, partition: int, offset: int, *,
               max_wait_ms: int = 0, min_bytes: int = 1, max_bytes: int = 1 << 20,
               partition_max_bytes: int = 1 << 20) -> Any:
    cls, module = kio_module(1, version)
    part = kio_body(module.FetchPartition, partition=partition, fetch_offset=offset,
                    partition_max_bytes=partition_max_bytes)
    return kio_body(cls, max_wait=datetime.timedelta(milliseconds=max_wait_ms),
                    min_bytes=min_bytes, max_bytes=max_bytes, isolation_level=0,
                    topics=(module.FetchTopic(topic=topic, partitions=(part,)),),
                    forgotten_topics_data=())


def list_offsets_body(version: int, topic: str, partition: int, timestamp: int) -> Any:
    cls, module = kio_module(2, version)
    part = kio_body(module.ListOffsetsPartition, partition_index=partition,
                    timestamp=timestamp)
    return kio_body(cls, replica_id=-1, isolation_level=0,
                    topics=(module.ListOffsetsTopic(name=topic, partitions=(part,)),))


def init_producer_id_body(version: int) -> Any:
    cls, _module = kio_module(22, version)
    return kio_body(cls, transactional_id=None,
                    transaction_timeout=datetime.timedelta(seconds=60))
