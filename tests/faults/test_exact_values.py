"""Decoded JSON values are exact: integers past 64 bits are never rounded (issue 13, #6).

orjson, the fast JSON decoder until then, held integers in [-2**63, 2**64 - 1] exactly
and from 3.13 on returned a float for any integer outside that range (decision 005).
These tests send such integers through a real worker on the embedded log and through a
topic's value serde, batch and single decoding, at top level and nested, and check
that the agent sees the same int the producer wrote (what ``json.loads`` gives).
"""
from __future__ import annotations

import json
import math
import struct
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamkit
from streamkit.serializers import codecs
from streamkit.serializers.serde import Serde
from streamkit.types import TopicPartition

from .workers import run_worker_blocking

#: the edges of the 64-bit range and values past them, both signs
EDGES = [
    2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**64 + 1,
    -(2**63) + 1, -(2**63), -(2**63) - 1, -(2**64) + 1, -(2**64), -(2**64) - 1,
    10**18, 10**19, -(10**19), 10**20 - 1,
    123456789012345678901234567890, -123456789012345678901234567890, 7 * 10**300,
]


class Account(streamkit.Record, serializer="json"):
    """Integers in every place a Record holds one: a field, a typed list, a free-form
    mapping (nested lists and dicts), an Any field, a str field coerced from an int."""

    id: int
    ids: list[int]
    extra: dict[str, Any]
    raw: Any
    label: str


def payload(value: int) -> bytes:
    """The JSON a producer writes for ``value`` (standard library: exact)."""
    return json.dumps({"id": value, "ids": [1, value, -1], "extra": {
        "a": [value, {"b": value}], "n": 2}, "raw": [[value]], "label": value}).encode()


def expected(value: int) -> tuple:
    return (value, [1, value, -1], {"a": [value, {"b": value}], "n": 2}, [[value]],
            str(value))


def fields(account: Account) -> tuple:
    return (account.id, account.ids, account.extra, account.raw, account.label)


def exact(value: Any) -> Any:
    """``value`` with types part of equality: 1 != 1.0 != True, -0.0 != 0.0, NaN == NaN."""
    if isinstance(value, list):
        return ("list", [exact(v) for v in value])
    if isinstance(value, dict):
        return ("dict", [(k, exact(v)) for k, v in value.items()])
    if isinstance(value, float):
        return ("float", struct.pack(">d", value))
    return (type(value).__name__, value)


# ------------------------------------------------------------------ a real worker


def test_a_worker_gets_integers_past_64_bits_exactly_in_batches_and_one_by_one(tmp_path):
    app = streamkit.App("exact", broker=f"log://{tmp_path / 'log'}", datadir=tmp_path,
                        store="memory://", web_enabled=False, commit_interval=0.05)
    # "clean" only holds good payloads: decoded by the batch decoder. "mixed" also
    # holds an integer too long for any decoder: that batch fails and is decoded one
    # payload at a time, the other path a value takes.
    clean = app.topic("clean", value_type=Account, partitions=1)
    mixed = app.topic("mixed", value_type=Account, partitions=1)
    got: dict[str, list[tuple]] = {"clean": [], "mixed": []}

    @app.agent(clean)
    async def read_clean(stream):
        async for account in stream:
            got["clean"].append(fields(account))

    @app.agent(mixed)
    async def read_mixed(stream):
        async for account in stream:
            got["mixed"].append(fields(account))

    too_long = b'{"id": ' + b"9" * 5000 + b"}"  # past Python's 4300-digit int limit

    async def produce() -> None:
        for value in EDGES:
            await clean.send(key="k", value=payload(value))
            await mixed.send(key="k", value=payload(value))
        await mixed.send(key="k", value=too_long)
    anyio.run(produce)

    run_worker_blocking(app, lambda _: len(got["clean"]) == len(got["mixed"]) == len(EDGES))
    for name in ("clean", "mixed"):
        assert [exact(list(v)) for v in got[name]] == [
            exact(list(expected(v))) for v in EDGES], name
    # nothing good was dead-lettered; the too-long integer was, saying why
    dlq = [m for p in range(1) for m in app.broker.fetch(
        TopicPartition("exact-mixed-dlq", p), 0, 100)]
    assert [m.value for m in dlq] == [too_long]
    error = dict(dlq[0].headers)["streamkit.error"].decode()
    assert "4300 digits" in error, error
    assert "exact-clean-dlq" not in app.broker.list_topics()


# ------------------------------------------------------------------ a topic's serde


def test_a_topic_value_decodes_exactly_alone_and_in_a_batch():
    serde = Serde(Account)
    for value in EDGES:
        data = payload(value)
        want = exact(list(expected(value)))
        assert exact(list(fields(serde.loads(data)))) == want, value    # one payload
        batch = [payload(7), data, None, payload(-7)]                     # None: tombstone
        decoded = serde.loads_many(batch)
        assert decoded[2] is None
        assert exact(list(fields(decoded[1]))) == want, value
        assert [fields(decoded[i]) for i in (0, 3)] == [expected(7), expected(-7)]


def test_only_the_payloads_with_out_of_range_integers_leave_the_fast_decoder():
    # A batch of a thousand in-range payloads with one that is not: every value exact,
    # including 19- and 20-digit integers (the edge of the old 64-bit fast path).
    serde = Serde(Account)
    values = [(-1) ** i * (2**64 - 1 - i if i % 3 else 10**18 + i) for i in range(1000)]
    values[500] = -(2**63) - 1
    decoded = serde.loads_many([payload(v) for v in values])
    assert [exact(list(fields(a))) for a in decoded] == [
        exact(list(expected(v))) for v in values]


# ------------------------------------------------------------------ properties

_near_edges = st.sampled_from(EDGES).flatmap(lambda v: st.integers(v - 3, v + 3))
_ints = st.one_of(st.integers(), _near_edges, st.integers(-(10**40), 10**40))
_leaves = st.one_of(st.none(), st.booleans(), _ints, st.floats(), st.text(max_size=12))
_values = st.recursive(_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=6), inner, max_size=5)),
    max_leaves=25)


class Holder(streamkit.Record, serializer="json"):
    """Any JSON value in one field: what a typed topic hands through unchanged."""

    v: Any


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(_values, min_size=1, max_size=8))
def test_the_fast_path_decodes_like_json_loads(values):
    codec = codecs.get("json")
    datas = [codec.dumps({"v": v}) for v in values]
    want = [exact(json.loads(d)) for d in datas]
    # the codec's fast decoder may refuse (the caller retries the careful way) but
    # never decodes to anything else
    for data, w in zip(datas, want):
        try:
            got = codec.fast_loads(data)
        except ValueError:
            continue
        assert exact(got) == w, data
    # a topic's values, one by one and as a batch (the worker's path)
    serde = Serde(Holder)
    assert [exact({"v": serde.loads(d).v}) for d in datas] == want
    assert [exact({"v": r.v}) for r in serde.loads_many(datas)] == want


_number = st.from_regex(r"\A-?(0|[1-9][0-9]{0,45})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?\Z")


@settings(max_examples=300, deadline=None)
@given(numbers=st.lists(_number, min_size=1, max_size=6), space=st.sampled_from(
    ["", " ", "\n\t "]))
def test_numbers_as_other_producers_write_them_decode_like_json_loads(numbers, space):
    # JSON text not written by streamkit: exponents, long mantissas, 40-digit integers.
    data = ("[" + f",{space}".join(numbers) + "]").encode()
    want = json.loads(data)
    assert not any(isinstance(x, float) and math.isnan(x) for x in want)
    got = Serde(Holder).loads_many([b'{"v":' + data + b"}"])[0].v
    assert exact(got) == exact(want), data


# ------------------------------------------------------------------ tombstones


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
def test_a_tombstone_reaches_the_agent_as_none(tmp_path, serializer):
    # A value of None on a topic typed with a Record (a delete on a compacted topic) is
    # not a payload to decode: the agent gets None, in order, with its key; nothing is
    # dead-lettered and the offsets move past it.
    class Ride(streamkit.Record, serializer=serializer):
        vendorId: int

    app = streamkit.App("tomb", broker=f"log://{tmp_path / 'log'}", datadir=tmp_path,
                        store="memory://", web_enabled=False, commit_interval=0.05)
    rides = app.topic("rides", key_type=str, value_type=Ride, partitions=1)
    got: list[tuple] = []

    @app.agent(rides)
    async def read(stream):
        async for key, ride in stream.items():
            got.append((key, ride, streamkit.current_event().value))

    sent = [("a", Ride(vendorId=1)), ("a", None), (None, None), ("b", Ride(vendorId=2)),
            ("b", None)]

    async def produce() -> None:
        for key, value in sent:
            await rides.send(key=key, value=value)
    anyio.run(produce)
    run_worker_blocking(app, lambda _: len(got) == len(sent))
    assert got == [(key, value, value) for key, value in sent]
    assert not [t for t in app.broker.list_topics() if t.endswith("-dlq")]
    assert app.broker.group_offsets("tomb")[0].committed == len(sent)
