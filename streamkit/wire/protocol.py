"""Kafka's framing and request headers, and the glue to kio's message types.

A Kafka request is an int32 size, then the header (api key, api version, correlation
id, client id, and tagged fields in header v2), then the body. Which header and body
layout a request uses depends on its API version, so the first eight bytes are read by
hand; the rest is kio's, generated from Kafka's own message definitions (decision 901).
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from functools import cache
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer
from kio.serial.errors import SerialError

__all__ = ["FRAME_SIZE", "FrameError", "Request", "decode_request", "encode_response",
           "peek_header", "request_type", "response_type"]

#: the default limit on one request's size: Kafka's ``socket.request.max.bytes``
FRAME_SIZE = 100 * 1024 * 1024

_SIZE = struct.Struct(">i")
_FIXED_HEADER = struct.Struct(">hhi")      # api key, api version, correlation id


class FrameError(Exception):
    """A frame that is not a Kafka request this server can read: its connection is
    closed (the peer is not speaking the protocol, or not a version of it we serve)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One decoded request: its header's fields and its kio body."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    body: Any


def peek_header(frame: bytes) -> tuple[int, int, int]:
    """(api key, api version, correlation id): the part of every header version that
    says how to read the rest."""
    if len(frame) < _FIXED_HEADER.size:
        raise FrameError(f"frame of {len(frame)} bytes is shorter than a request header")
    key, version, correlation_id = _FIXED_HEADER.unpack_from(frame)
    return key, version, correlation_id


@cache
def request_type(api_key: int, version: int) -> type[Any]:
    """kio's request class of one API version (KeyError-like kio errors if unknown)."""
    return load_request_schema(api_key, version)


@cache
def response_type(api_key: int, version: int) -> type[Any]:
    """kio's response class of one API version."""
    return load_response_schema(api_key, version)


_READERS: dict[type[Any], Any] = {}
_WRITERS: dict[type[Any], Any] = {}


def _reader(cls: type[Any]) -> Any:
    """kio's decoder of ``cls``, made once."""
    reader = _READERS.get(cls)
    if reader is None:
        reader = _READERS[cls] = entity_reader(cls)
    return reader


def _writer(cls: type[Any]) -> Any:
    """kio's encoder of ``cls``, made once."""
    writer = _WRITERS.get(cls)
    if writer is None:
        writer = _WRITERS[cls] = entity_writer(cls)
    return writer


def decode_request(frame: bytes, api_key: int, version: int) -> Request:
    """The request in ``frame`` (its size prefix removed), for an API version this
    server serves. Raises ``FrameError`` if it cannot be read."""
    cls = request_type(api_key, version)
    try:
        header, used = _reader(cls.__header_schema__)(frame, 0)
        body, _size = _reader(cls)(frame, used)
    except (SerialError, ValueError, OverflowError, KeyError) as exc:
        # (KeyError: kio refuses a tagged field it does not know, which Kafka would skip)
        raise FrameError(f"cannot decode api {api_key} v{version}: {exc}") from None
    # bytes after the body are ignored, as Kafka does: librdkafka 2.x sends some after
    # a Metadata v12 request for all topics
    return Request(api_key, version, header.correlation_id, header.client_id, body)


def encode_response(correlation_id: int, body: Any) -> bytes:
    """``body`` (a kio response) framed for the wire: size, response header, body."""
    cls = type(body)
    header_cls = cls.__header_schema__
    out = io.BytesIO()
    out.write(b"\0\0\0\0")
    _writer(header_cls)(out, header_cls(correlation_id=correlation_id))
    _writer(cls)(out, body)
    data = out.getbuffer()
    _SIZE.pack_into(data, 0, len(data) - 4)
    del data
    return out.getvalue()
