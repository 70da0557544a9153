"""The codecs of compressed record batches: gzip (the standard library's zlib), and
snappy, lz4 and zstd (``cramjam``, one wheel with all three; decision 930).

A batch's records are compressed as one block, in the form Kafka's clients write:
gzip with a gzip header; snappy either raw (librdkafka) or in the xerial framing of
snappy-java (the Java client, kafka-python); lz4 and zstd as one frame of their
standard formats. Every codec stops at ``MAX_INFLATED`` bytes, so that a small request
cannot make the server allocate without bound.
"""
from __future__ import annotations

import struct
import zlib
from typing import Any

try:
    import cramjam
except ImportError:          # an older install of the broker extra: gzip only
    cramjam = None  # type: ignore[assignment]

__all__ = ["CODECS", "MAX_INFLATED", "CodecError", "TooLarge", "Unreadable",
           "Unsupported", "decompress"]

#: the most bytes one compressed batch may inflate to
MAX_INFLATED = 256 * 1024 * 1024
#: compression attribute -> its name
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}

_XERIAL = b"\x82SNAPPY\x00"
_XERIAL_HEADER = 16             # the magic, a version and a compatible version (int32s)
_BLOCK_SIZE = struct.Struct(">i")
#: the first output buffer for lz4 and zstd, as a multiple of the compressed size (a
#: buffer too small is grown eightfold, up to MAX_INFLATED)
_FIRST_RATIO = 16
_FIRST_MIN = 1 << 20


class CodecError(Exception):
    """A compressed block this server does not inflate."""


class Unreadable(CodecError):
    """The block is not valid for its codec."""


class TooLarge(CodecError):
    """The block inflates past ``MAX_INFLATED``."""


class Unsupported(CodecError):
    """The codec is unknown, or its library is not installed."""


def decompress(codec: int, body: bytes) -> bytes:
    """The records block ``body`` compressed with ``codec`` (a batch's attribute bits
    0-2), inflated."""
    if codec == 0:
        return body
    if codec == 1:
        return _gunzip(body)
    name = CODECS.get(codec)
    if name is None:
        raise Unsupported(f"compression {codec} is not a Kafka codec")
    if cramjam is None:
        raise Unsupported(f"{name} records need the cramjam package "
                          "(pip install 'streamkit[broker]')")
    if codec == 2:
        return _unsnappy(body)
    return _inflate_frame(getattr(cramjam, name), name, body)


def _gunzip(body: bytes) -> bytes:
    inflater = zlib.decompressobj(wbits=47)         # a gzip (or zlib) header
    try:
        data = inflater.decompress(body, MAX_INFLATED)
    except zlib.error as exc:
        raise Unreadable(f"gzip records: {exc}") from None
    if inflater.unconsumed_tail:
        raise TooLarge(f"gzip records inflate past {MAX_INFLATED} bytes")
    return data


def _unsnappy(body: bytes) -> bytes:
    """Raw snappy, or xerial's framing: a header, then blocks each prefixed with its
    size. Each raw block says how large it inflates before it is inflated."""
    if not body.startswith(_XERIAL):
        return _raw_snappy([body])
    blocks = []
    pos = _XERIAL_HEADER
    while pos < len(body):
        if pos + 4 > len(body):
            raise Unreadable("snappy records: a block size cut short")
        (size,) = _BLOCK_SIZE.unpack_from(body, pos)
        if size < 0 or pos + 4 + size > len(body):
            raise Unreadable("snappy records: a block past the end")
        blocks.append(body[pos + 4:pos + 4 + size])
        pos += 4 + size
    return _raw_snappy(blocks)


def _raw_snappy(blocks: list[bytes]) -> bytes:
    try:
        total = sum(cramjam.snappy.decompress_raw_len(block) for block in blocks)
        if total > MAX_INFLATED:
            raise TooLarge(f"snappy records inflate past {MAX_INFLATED} bytes")
        return b"".join(bytes(cramjam.snappy.decompress_raw(block)) for block in blocks)
    except cramjam.DecompressionError as exc:
        raise Unreadable(f"snappy records: {exc}") from None


def _inflate_frame(module: Any, name: str, body: bytes) -> bytes:
    """One lz4 or zstd frame, into a buffer grown until it holds the records (their
    frames need not say their size)."""
    size = min(MAX_INFLATED, max(_FIRST_MIN, len(body) * _FIRST_RATIO))
    while True:
        out = bytearray(size)
        try:
            used = module.decompress_into(body, out)
        except cramjam.DecompressionError as exc:
            # cramjam says so when the output is full; anything else is bad input
            if "whole buffer" not in str(exc):
                raise Unreadable(f"{name} records: {exc}") from None
            if size >= MAX_INFLATED:
                raise TooLarge(f"{name} records inflate past {MAX_INFLATED} bytes"
                               ) from None
            size = min(MAX_INFLATED, size * 8)
            continue
        with memoryview(out) as view:
            return bytes(view[:used])
