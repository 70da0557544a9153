"""A Kafka-protocol server over a real embedded log on disk, started in this process on
a free port (its event loop in a portal thread, so that blocking clients can call it),
and a raw Kafka client that sends any request and reads its response with kio."""
from __future__ import annotations

import io
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
