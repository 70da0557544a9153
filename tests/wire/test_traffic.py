"""The counts behind ``streamkit broker``'s status line: records written by Produce
(not those refused), and records returned by Fetch."""
from __future__ import annotations

import socket

from kio.index import load_request_schema

from tests.wire.conftest import (Wire, fetch_body, frame_of, produce_body, read_frame,
                                 record_batch)


def send(wire: Wire, api_key: int, version: int, body: object, answered: bool = True
         ) -> None:
    with socket.create_connection(("127.0.0.1", wire.port), timeout=5) as sock:
        sock.sendall(frame_of(api_key, version, body))
        if answered:
            assert read_frame(sock) is not None
        else:           # acks=0: no answer; a request after it is answered in order
            sock.sendall(frame_of(18, 3, load_request_schema(18, 3)(
                client_software_name="t", client_software_version="1")))
            assert read_frame(sock) is not None


def test_records_produced_and_fetched_are_counted(wire: Wire) -> None:
    wire.log.create_topic("rides", 1)
    three = record_batch([(None, b"v%d" % i, [], 1_700_000_000_000 + i) for i in range(3)])
    two = record_batch([(None, b"w", [], 1_700_000_000_000)] * 2)

    send(wire, 0, 9, produce_body(9, "rides", 0, three + two))
    send(wire, 0, 9, produce_body(9, "missing", 0, three))          # refused
    send(wire, 0, 9, produce_body(9, "rides", 0, two, acks=0), answered=False)
    assert wire.server.traffic.produced == 7

    send(wire, 1, 12, fetch_body(12, "rides", 0, 0))
    send(wire, 1, 12, fetch_body(12, "rides", 0, 5))
    assert wire.server.traffic.fetched == 7 + 2
