"""The server on the wire, with a raw client: every advertised API version answers;
what Kafka answers or closes for versions and APIs it does not serve; frames that are
too large, cut short or random close only their own connection."""
from __future__ import annotations

import datetime
import logging
import random
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kio.index import load_request_schema

from streamkit.types import OutgoingRecord, TopicPartition
from streamkit.wire import SERVED
from streamkit.wire.apis import JOIN_GROUP, SYNC_GROUP
from tests.wire.admin_requests import ADMIN_APIS, admin_body, check_admin_response
from tests.wire.conftest import (Wire, closed_by_server, decode_response, fetch_body,
                                 frame_of, header_only, init_producer_id_body,
                                 list_offsets_body, produce_body, read_batches, read_frame,
                                 record_batch, start_wire)
from tests.wire.group_requests import GROUP_APIS, check_group_response, \
    group_request_body
from tests.wire.txn_requests import TXN_APIS, check_txn_response, txn_request_body

API_VERSIONS, METADATA, CREATE_TOPICS, DELETE_TOPICS = 18, 3, 19, 20
PRODUCE, FETCH, LIST_OFFSETS, INIT_PRODUCER_ID = 0, 1, 2, 22
ONE_RECORD = record_batch([(b"k", b"v", [("h", b"x")], 1_700_000_000_000)])


def connection(wire: Wire) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", wire.port), timeout=5)
    return sock


def call(sock: socket.socket, api_key: int, version: int, body: Any,
         correlation_id: int = 7) -> Any:
    sock.sendall(frame_of(api_key, version, body, correlation_id))
    data = read_frame(sock)
    assert data is not None, f"api {api_key} v{version}: the server closed the connection"
    got_id, response = decode_response(data, api_key, version)
    assert got_id == correlation_id
    return response


def request_body(api_key: int, version: int) -> Any:
    """A small valid request of each served API version."""
    if api_key == PRODUCE:
        return produce_body(version, "orders", 1, ONE_RECORD)
    if api_key == FETCH:
        return fetch_body(version, "orders", 0, 0)
    if api_key == LIST_OFFSETS:
        return list_offsets_body(version, "orders", 0, -1)
    if api_key == INIT_PRODUCER_ID:
        return init_producer_id_body(version)
    if api_key in ADMIN_APIS:
        return admin_body(api_key, version)
    if api_key in GROUP_APIS:
        return group_request_body(api_key, version)
    if api_key in TXN_APIS:
        return txn_request_body(api_key, version)
    cls = load_request_schema(api_key, version)
    module = __import__(cls.__module__, fromlist=["_"])
    if api_key == API_VERSIONS:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**({"client_software_name": "raw", "client_software_version": "1"}
                      if "client_software_name" in names else {}))
    if api_key == METADATA:
        topic = module.MetadataRequestTopic
        fields = topic.__dataclass_fields__
        wanted = topic(**{k: v for k, v in (("name", "orders"), ("topic_id", None))
                          if k in fields})
        values = {"topics": (wanted,), "allow_auto_topic_creation": False,
                  "include_cluster_authorized_operations": False,
                  "include_topic_authorized_operations": False}
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})
    if api_key == DELETE_TOPICS:
        name = f"gone-v{version}"
        if version >= 6:                        # by name or id
            return cls(topics=(module.DeleteTopicState(name=name, topic_id=None),),
                       timeout=datetime.timedelta(seconds=5))
        return cls(topic_names=(name,), timeout=datetime.timedelta(seconds=5))
    assert api_key == CREATE_TOPICS
    topic = module.CreatableTopic(name=f"new-v{version}", num_partitions=2,
                                  replication_factor=1, assignments=(), configs=())
    values = {"topics": (topic,), "timeout": datetime.timedelta(seconds=5),
              "validate_only": False}
    return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


SERVED_VERSIONS = [(key, version) for key, (low, high) in sorted(SERVED.items())
                   for version in range(low, high + 1)]


@pytest.mark.parametrize(("api_key", "version"), SERVED_VERSIONS)
def test_every_advertised_version_answers(wire: Wire, api_key: int, version: int) -> None:
    wire.log.create_topic("orders", 3)
    wire.log.create_topic(f"gone-v{version}", 1)
    wire.log.produce("orders", [OutgoingRecord(b"a", b"one", None, 5, 0),
                                OutgoingRecord(b"b", b"two", None, 6, 0)])
    with connection(wire) as sock:
        response = call(sock, api_key, version, request_body(api_key, version))

    if api_key == PRODUCE:
        (part,) = response.responses[0].partition_responses
        assert (part.index, part.error_code, part.base_offset) == (1, 0, 0)
        (message,) = wire.log.fetch(TopicPartition("orders", 1), 0)
        assert (message.key, message.value, message.headers) == (b"k", b"v", [("h", b"x")])
    elif api_key == FETCH:
        (part,) = response.responses[0].partitions
        assert (part.error_code, part.high_watermark) == (0, 2)
        assert [(o, k, v, t) for o, k, v, t in read_batches(part.records)] == \
            [(0, b"a", b"one", 5), (1, b"b", b"two", 6)]
    elif api_key == LIST_OFFSETS:
        (part,) = response.topics[0].partitions
        assert (part.error_code, part.offset) == (0, 2)
    elif api_key == INIT_PRODUCER_ID:
        assert (response.error_code, response.producer_epoch) == (0, 0)
        assert response.producer_id >= 0
    elif api_key == API_VERSIONS:
        assert response.error_code == 0
        assert {k.api_key: (k.min_version, k.max_version) for k in response.api_keys} \
            == SERVED
    elif api_key == METADATA:
        (topic,) = response.topics
        assert (topic.name, topic.error_code, len(topic.partitions)) == ("orders", 0, 3)
        assert [(b.node_id, b.host, b.port) for b in response.brokers] == \
            [(0, "127.0.0.1", wire.port)]
    elif api_key in ADMIN_APIS:
        check_admin_response(wire, api_key, response)
    elif api_key in GROUP_APIS:
        check_group_response(api_key, version, response)
    elif api_key in TXN_APIS:
        check_txn_response(api_key, version, response)
    elif api_key == DELETE_TOPICS:
        (result,) = response.responses
        assert (result.name, result.error_code) == (f"gone-v{version}", 0)
        assert wire.log.partition_count(f"gone-v{version}") is None
    else:
        (result,) = response.topics
        assert result.error_code == 0
        assert wire.log.partition_count(f"new-v{version}") == 2


def test_apiversions_of_an_unknown_version_gets_unsupported_version(wire: Wire) -> None:
    with connection(wire) as sock:
        sock.sendall(header_only(API_VERSIONS, 99, correlation_id=41))
        data = read_frame(sock)
        assert data is not None
        correlation_id, response = decode_response(data, API_VERSIONS, 0)
        assert correlation_id == 41
        assert response.error_code == 35            # UNSUPPORTED_VERSION
        assert [(k.api_key, k.min_version, k.max_version) for k in response.api_keys] == \
            [(API_VERSIONS, *SERVED[API_VERSIONS])]

        # as on Kafka, the connection stays: the client asks again in a version it knows
        again = call(sock, API_VERSIONS, 3, request_body(API_VERSIONS, 3))
        assert again.error_code == 0


@pytest.mark.parametrize(("api_key", "version"), [
    (1, 13),           # Fetch by topic id: not served yet
    (3, 13),           # Metadata, a version above the advertised range
    (19, 1),           # CreateTopics below Kafka 4's minimum
    (999, 0),          # no such API
])
def test_an_api_or_version_not_served_closes_only_that_connection(
        wire: Wire, api_key: int, version: int) -> None:
    with connection(wire) as bad, connection(wire) as good:
        bad.sendall(header_only(api_key, version))
        assert closed_by_server(bad)
        assert call(good, API_VERSIONS, 3, request_body(API_VERSIONS, 3)).error_code == 0


@pytest.fixture
def small_frames(tmp_path: Path) -> Iterator[Wire]:
    # (few partitions: a fuzzed CreateTopics may ask for any number)
    yield from start_wire(tmp_path, max_frame_size=1024, max_connections=3,
                          max_partitions=8)


def test_an_oversized_frame_closes_its_connection(small_frames: Wire) -> None:
    with connection(small_frames) as bad, connection(small_frames) as good:
        bad.sendall(struct.pack(">i", 1025) + b"\0" * 64)
        assert closed_by_server(bad)
        assert call(good, API_VERSIONS, 3, request_body(API_VERSIONS, 3)).error_code == 0


def test_a_silent_or_stalled_connection_is_closed_after_the_idle_timeout(
        tmp_path: Path) -> None:
    for wire in start_wire(tmp_path, idle_timeout=0.3):
        with connection(wire) as silent, connection(wire) as stalled, \
                connection(wire) as busy:
            stalled.sendall(frame_of(API_VERSIONS, 3, request_body(API_VERSIONS, 3))[:10])
            started = time.monotonic()
            for _ in range(4):          # a request every 0.15 s keeps this one open
                assert call(busy, API_VERSIONS, 3,
                            request_body(API_VERSIONS, 3)).error_code == 0
                time.sleep(0.15)
            assert closed_by_server(silent) and closed_by_server(stalled)
            assert time.monotonic() - started < 3
            assert call(busy, API_VERSIONS, 3, request_body(API_VERSIONS, 3)).error_code == 0


def test_connections_beyond_the_limit_are_closed(small_frames: Wire) -> None:
    socks = [connection(small_frames) for _ in range(3)]
    try:
        for sock in socks:                      # each of the three is served
            assert call(sock, API_VERSIONS, 0, request_body(API_VERSIONS, 0)).error_code == 0
        with connection(small_frames) as fourth:
            assert closed_by_server(fourth)
        socks.pop().close()
        deadline = time.monotonic() + 5          # the server notices the close soon
        while small_frames.server.connections > 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        with connection(small_frames) as again:  # a slot is free again
            assert call(again, API_VERSIONS, 0, request_body(API_VERSIONS, 0)).error_code == 0
    finally:
        for sock in socks:
            sock.close()


def fuzz_frames(seed: int, count: int) -> Iterator[bytes]:
    """Random frames, cut-short good ones, and good headers with random bodies."""
    rng = random.Random(seed)
    good = [frame_of(key, version, request_body(key, version))
            for key, version in SERVED_VERSIONS]
    for _ in range(count):
        kind = rng.randrange(4)
        if kind == 0:
            yield rng.randbytes(rng.randrange(1, 64))
        elif kind == 1:
            frame = rng.choice(good)
            yield frame[:rng.randrange(1, len(frame))]
        elif kind == 2:
            frame = rng.choice(good)          # a good size and header, a random body
            body = rng.randbytes(len(frame) - 12)
            yield frame[:12] + body
        else:
            frame = bytearray(rng.choice(good))
            for _ in range(rng.randrange(1, 4)):   # a few bytes flipped
                frame[rng.randrange(4, len(frame))] = rng.randrange(256)
            yield bytes(frame)


def test_fuzzed_frames_never_stop_the_server(small_frames: Wire,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="streamkit.wire")
    for frame in fuzz_frames(seed=18, count=400):
        with connection(small_frames) as sock:
            sock.sendall(frame)
            sock.shutdown(socket.SHUT_WR)       # the peer sent all it will send
            while read_frame(sock) is not None:
                pass                              # whatever it answered, until it closes

    with connection(small_frames) as good:
        response = call(good, METADATA, 12, request_body(METADATA, 12))
        assert [b.node_id for b in response.brokers] == [0]
    deadline = time.monotonic() + 5
    while small_frames.server.connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert small_frames.server.connections == 0     # every fuzzed connection was let go
    # a frame that decodes is answered, or refused with Kafka's error: never a handler
    # failing on it (logged as an error, closing the connection)
    assert [r.getMessage() for r in caplog.records] == []


def mutated_bodies(seed: int, per_version: int) -> Iterator[tuple[int, bytes]]:
    """(api key, frame) of each served version's good request with 1 to 3 bytes of its
    body changed (the size and header kept): most still decode, into odd counts, names
    and flags, so every handler meets them."""
    rng = random.Random(seed)
    for key, version in SERVED_VERSIONS:
        frame = frame_of(key, version, request_body(key, version))
        body_from = 4 + 8 + 2 + len("test") + 1          # size, header v1/v2 (client "test")
        if len(frame) <= body_from:
            continue                                      # (ApiVersions v0: no body)
        for _ in range(per_version):
            mutated = bytearray(frame)
            for _ in range(rng.randrange(1, 4)):
                mutated[rng.randrange(body_from, len(frame))] = rng.randrange(256)
            yield key, bytes(mutated)


def test_mutated_request_bodies_are_answered_or_refused_never_fail(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="streamkit.wire")
    for wire in start_wire(tmp_path, max_frame_size=1024, max_partitions=8):
        wire.log.create_topic("orders", 3)
        answerable = 0
        for key, frame in mutated_bodies(seed=37, per_version=8):
            # (a JoinGroup or SyncGroup waits for its group, and is let go when its
            # client hangs up, as this one does at once: no answer is counted for it)
            answerable += key not in (JOIN_GROUP, SYNC_GROUP)
            with connection(wire) as sock:
                sock.settimeout(1)
                sock.sendall(frame)
                sock.shutdown(socket.SHUT_WR)
                try:
                    while read_frame(sock) is not None:
                        pass
                except TimeoutError:
                    # a Fetch whose max_wait became long waits for records, as asked
                    assert key == FETCH

        # a good part decoded and reached its handler: the test exercises the answers
        assert wire.server.requests > answerable // 4
        assert [r.getMessage() for r in caplog.records] == []
        with connection(wire) as good:
            assert call(good, API_VERSIONS, 3, request_body(API_VERSIONS, 3)).error_code == 0


def create_topic_body(version: int, name: str, configs: dict[str, str],
                      validate_only: bool = False) -> Any:
    cls = load_request_schema(CREATE_TOPICS, version)
    module = __import__(cls.__module__, fromlist=["_"])
    given = tuple(module.CreatableTopicConfig(name=k, value=v) for k, v in configs.items())
    topic = module.CreatableTopic(name=name, num_partitions=2, replication_factor=-1,
                                  assignments=(), configs=given)
    return cls(topics=(topic,), timeout=datetime.timedelta(seconds=5),
               validate_only=validate_only)


@pytest.mark.parametrize("validate_only", [False, True])
def test_create_topics_v5_answers_the_topics_configs(wire: Wire,
                                                     validate_only: bool) -> None:
    # Kafka's Java admin client reads the configs of every topic created without a
    # config error, and fails on a null list
    with connection(wire) as sock:
        response = call(sock, CREATE_TOPICS, 7,
                        create_topic_body(7, "compacted", {"cleanup.policy": "compact"},
                                          validate_only))

    (result,) = response.topics
    assert (result.error_code, result.topic_config_error_code, result.num_partitions) == \
        (0, 0, 2)
    configs = {c.name: (c.value, c.config_source) for c in result.configs}
    assert configs["cleanup.policy"] == ("compact", 1)            # set on the topic
    assert configs["retention.ms"] == ("604800000", 5)            # the default
    assert (wire.log.partition_count("compacted") is None) == validate_only


def test_create_topics_validate_only_checks_the_configs(wire: Wire) -> None:
    with connection(wire) as sock:
        response = call(sock, CREATE_TOPICS, 7,
                        create_topic_body(7, "bad", {"cleanup.policy": "shred"}, True))

    (result,) = response.topics
    assert result.error_code == 40                                 # INVALID_CONFIG
    assert "cleanup.policy" in result.error_message
    assert result.configs is None
