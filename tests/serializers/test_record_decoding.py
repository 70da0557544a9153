"""Records decoded straight from bytes (msgspec) and the careful way agree (decision 203).

A topic's Serde decodes a json or msgpack payload into a Record with msgspec when every
field's type allows it; a payload msgspec refuses (a number sent as a string, a missing
field, bad bytes) is decoded by the generated careful decoder, which converts the value
or names the error. Whichever decoder reads a payload, the Record is the same.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.errors import DecodeError, ValidationError
from streamkit.models import Record
from streamkit.serializers import Serde, codecs
from streamkit.serializers.converters import parse_datetime


class Point(Record):
    x: float
    y: float = 0.0


class Trip(Record):
    vendorId: int
    amount: float
    flag: bool = False
    note: str = ""
    pickup: datetime | None = None
    stops: list[Point] = []
    tags: dict[str, int] = {}
    zones: tuple[int, ...] = ()


def encode(value: dict, fmt: str) -> bytes:
    """What another producer writes: the standard encoders, no streamkit involved."""
    return msgpack.packb(value, datetime=True) if fmt == "msgpack" else json.dumps(
        value).encode()


def careful(value: dict) -> Any:
    """The value as the careful decoder reads it (the constructor's rules)."""
    try:
        return Trip.from_data(value)
    except ValidationError as exc:
        return ("error", str(exc))


def serde_outcomes(value: dict, fmt: str) -> list[Any]:
    """What Serde.loads and Serde.loads_many give for ``value`` written in ``fmt``."""
    serde = Serde(Trip, fmt)
    data = encode(value, fmt)
    outcomes: list[Any] = []
    try:
        outcomes.append(serde.loads(data))
    except DecodeError as exc:
        outcomes.append(("error", str(exc.__cause__)))
    errors: list = []
    out = serde.loads_many([data, data], errors)
    outcomes += [("error", str(errors[0][1].__cause__)) if errors else out[0],
                 ("error", str(errors[1][1].__cause__)) if errors else out[1]]
    return outcomes


# ------------------------------------------------------------------ the two agree

_text = st.sampled_from(["1", " 2 ", "3.5", "true", "x", "2020-07-01 00:25:32", ""])
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), _text)
_values = st.fixed_dictionaries({
    "vendorId": _scalar, "amount": _scalar,
}, optional={
    "flag": _scalar, "note": _scalar,
    "pickup": st.one_of(_scalar, st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)).map(str)),
    "stops": st.lists(st.one_of(
        st.fixed_dictionaries({"x": _scalar}, optional={"y": _scalar}), _scalar),
        max_size=3),
    "tags": st.dictionaries(st.text(max_size=3), _scalar, max_size=3),
    "zones": st.lists(_scalar, max_size=3),
    "unknown": _scalar,
})


@settings(max_examples=300, deadline=None)
@given(value=_values, fmt=st.sampled_from(["json", "msgpack"]))
def test_fast_and_careful_decoders_give_the_same_record_or_error(value: dict,
                                                                 fmt: str) -> None:
    expected = careful(value)
    assert serde_outcomes(value, fmt) == [expected] * 3


def test_the_fast_decoder_builds_records_of_the_class_with_defaults() -> None:
    serde = Serde(Trip, "msgpack")
    assert serde._fast is not None  # noqa: SLF001 - the tests above compare two paths
    data = msgpack.packb({"vendorId": 1, "amount": 2.5, "stops": [{"x": 1.0}]})
    first, second = serde.loads_many([data, data])
    assert type(first) is Trip and type(first.stops[0]) is Point
    assert first == Trip(1, 2.5, stops=[Point(1.0)])
    first.tags["a"] = 1  # defaults are not shared between decoded records
    assert second.tags == {}


# ------------------------------------------------------------------ datetimes

@pytest.mark.parametrize("text, expected", [
    # digits past the microsecond are rounded, as msgspec reads them
    ("2020-07-01T00:25:32.1234567", datetime(2020, 7, 1, 0, 25, 32, 123457)),
    ("2020-07-01 00:25:59.9999995", datetime(2020, 7, 1, 0, 26)),
    # a lowercase z is UTC
    ("2020-07-01t00:25:32z", datetime(2020, 7, 1, 0, 25, 32, tzinfo=timezone.utc)),
    # forms only fromisoformat reads still read
    ("20200701T002532", datetime(2020, 7, 1, 0, 25, 32)),
    ("2020-07-01T00:25:32+01:00:30",
     datetime(2020, 7, 1, 0, 25, 32, tzinfo=timezone(timedelta(seconds=3630)))),
])
@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_a_datetime_text_reads_the_same_by_every_decoder(text: str, expected: datetime,
                                                         fmt: str) -> None:
    assert parse_datetime(text) == expected
    assert Trip(1, 1.0, pickup=text).pickup == expected
    assert Trip.from_data({"vendorId": 1, "amount": 1, "pickup": text}).pickup == expected
    typed = encode({"vendorId": 1, "amount": 1.0, "pickup": text}, fmt)
    coerced = encode({"vendorId": "1", "amount": 1.0, "pickup": text}, fmt)
    serde = Serde(Trip, fmt)
    assert [r.pickup for r in serde.loads_many([typed, coerced])] == [expected] * 2
    assert serde.loads(typed).pickup == serde.loads(coerced).pickup == expected


_iso_pieces = st.tuples(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from(["T", " ", "t"]),
    st.sampled_from(["", ".5", ".123", ".123456", ".1234567", ".9999995", ".99999999",
                     ".0000004", ".12345678901"]),
    st.sampled_from(["", "Z", "z", "+00:00", "-00:00", "+01:00", "+0100", "-05:30",
                     "+23:59", "+01:00:30"]))


@settings(max_examples=500, deadline=None)
@given(pieces=_iso_pieces)
def test_parse_datetime_reads_rfc3339_text_as_the_fast_decoder_does(pieces) -> None:
    when, sep, fraction, offset = pieces
    text = (f"{when.year:04d}-{when.month:02d}-{when.day:02d}{sep}{when.hour:02d}:"
            f"{when.minute:02d}:{when.second:02d}{fraction}{offset}")
    decoder = Serde(Trip, "msgpack")
    data = msgpack.packb({"vendorId": 1, "amount": 1.0, "pickup": text})
    try:
        fast = decoder._fast(data).pickup  # noqa: SLF001 - the fast decoder alone
    except Exception:  # refused: the careful decoder alone decides
        fast = None
    try:
        parsed = parse_datetime(text)
    except ValueError:
        parsed = None
    if fast is not None:
        assert parsed == fast and parsed.utcoffset() == fast.utcoffset()
    elif parsed is not None:
        assert parsed == datetime.fromisoformat(text)


@pytest.mark.parametrize("seconds, nanoseconds", [
    (1593563132, 999999999), (1593563132, 500), (1593563132, 499), (-1, 500),
    (0, 1), (2**34 - 1, 999999500)])
def test_msgpack_timestamps_read_the_same_by_every_decoder(seconds: int,
                                                           nanoseconds: int) -> None:
    stamp = msgpack.Timestamp(seconds, nanoseconds)
    typed = msgpack.packb({"vendorId": 1, "amount": 1.0, "pickup": stamp})
    coerced = msgpack.packb({"vendorId": "1", "amount": 1.0, "pickup": stamp})
    serde = Serde(Trip, "msgpack")
    fast, slow = serde.loads_many([typed, coerced])
    assert fast.pickup == slow.pickup == Trip(1, 1.0, pickup=stamp).pickup
    micros = (nanoseconds + 500) // 1000  # rounded to the nearest microsecond
    assert fast.pickup == datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(
        seconds=seconds, microseconds=micros)


# ------------------------------------------------------------------ batches

def test_a_refused_payload_is_decoded_once_and_the_batch_goes_on() -> None:
    calls: list[int] = []

    class Counted(Record):
        a: int
        b: str = ""

        def __post_init__(self) -> None:
            calls.append(self.a)

    serde = Serde(Counted, "msgpack")
    typed = [msgpack.packb({"a": n}) for n in range(4)]
    coerced = msgpack.packb({"a": "9"})
    out = serde.loads_many([typed[0], coerced, typed[1], None, typed[2], typed[3]])
    assert [r.a if r else None for r in out] == [0, 9, 1, None, 2, 3]
    assert calls == [0, 9, 1, 2, 3]  # each payload once, in order


def test_runs_of_refused_payloads_keep_their_indexes_and_errors() -> None:
    # Two refusals in a row hand the rest of the batch to the generated loop; the
    # errors still name the payload's index in the whole batch.
    serde = Serde(Trip, "msgpack")
    typed = msgpack.packb({"vendorId": 1, "amount": 1.0})
    strings = msgpack.packb({"vendorId": "2", "amount": "2.5"})
    bad_type = msgpack.packb({"vendorId": "x", "amount": 1.0})
    batch = [typed, strings, strings, bad_type, typed, b"\xc1", strings, typed]
    errors: list = []
    out = serde.loads_many(batch, errors)
    assert [i for i, _ in errors] == [3, 5]
    assert str(errors[0][1]) == ("cannot decode Trip (msgpack): Trip.vendorId: "
                                 "expected int, got 'x' (str)")
    good = [r for r in out if not isinstance(r, DecodeError)]
    assert good == [Trip(1, 1.0), Trip(2, 2.5), Trip(2, 2.5), Trip(1, 1.0),
                    Trip(2, 2.5), Trip(1, 1.0)]
    with pytest.raises(DecodeError, match=r"Trip\.vendorId: expected int"):
        serde.loads_many(batch)


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_wrong_types_name_record_field_and_value_on_every_path(fmt: str) -> None:
    serde = Serde(Trip, fmt)
    data = encode({"vendorId": 1, "amount": 1.0, "stops": [{"x": "far"}]}, fmt)
    message = (f"cannot decode Trip ({fmt}): Trip.stops[0]: Point.x: expected float, "
               "got 'far' (str)")
    with pytest.raises(DecodeError) as info:
        serde.loads(data)
    assert str(info.value) == message
    errors: list = []
    serde.loads_many([data], errors)
    assert str(errors[0][1]) == message
    with pytest.raises(ValidationError, match=r"^Trip\.stops\[0\]: Point\.x: expected"):
        Trip.loads(data, fmt)


def test_single_payloads_of_strings_still_decode_after_many_refusals() -> None:
    serde = Serde(Trip, "json")
    strings = codecs.get("json").dumps({"vendorId": "3", "amount": "1.5"})
    typed = codecs.get("json").dumps({"vendorId": 3, "amount": 1.5})
    for _ in range(200):
        assert serde.loads(strings) == Trip(3, 1.5)
    assert serde.loads(typed) == Trip(3, 1.5)
    with pytest.raises(DecodeError, match="Trip.vendorId: expected int"):
        serde.loads(b'{"vendorId": "three", "amount": 1}')


class Color(Enum):
    RED = "red"


class Priced(Record):
    price: Decimal
    color: Color = Color.RED
    extra: Any = None


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_types_msgspec_reads_otherwise_keep_the_converters_reading(fmt: str) -> None:
    # msgspec would read the JSON number 9.30 as Decimal("9.30"); the converter gives
    # Decimal("9.3"), as for the float 9.3.
    serde = Serde(Priced, fmt)
    data = b'{"price": 9.30}' if fmt == "json" else msgpack.packb({"price": 9.30})
    assert str(serde.loads(data).price) == "9.3"
    assert serde.loads(encode({"price": "1", "color": "RED"}, fmt)).color is Color.RED
    # msgpack's timestamp extension in an Any field stays msgpack's Timestamp
    stamp = msgpack.Timestamp(1, 5)
    if fmt == "msgpack":
        data = msgpack.packb({"price": "1", "extra": stamp})
        assert serde.loads(data).extra == stamp


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_loads_again_gives_what_loads_gives_and_names_the_same_errors(fmt: str) -> None:
    # a stream-stream join decodes a buffered value again with loads_again when it
    # joins: msgspec first, the usual way when msgspec refuses
    serde = Serde(Trip, fmt)
    again = serde.loads_again()
    typed = encode({"vendorId": 1, "amount": 2.5, "stops": [{"x": 1.0}]}, fmt)
    coerced = encode({"vendorId": "7", "amount": 1.0}, fmt)
    assert again(typed) == serde.loads(typed) == Trip(1, 2.5, stops=[Point(1.0)])
    assert again(coerced) == serde.loads(coerced) == Trip(7, 1.0)
    bad = encode({"vendorId": "seven", "amount": 1.0}, fmt)
    with pytest.raises(DecodeError) as usual:
        serde.loads(bad)
    with pytest.raises(DecodeError) as second:
        again(bad)
    assert str(second.value) == str(usual.value)
    assert "vendorId" in str(second.value)
    # a type msgspec does not decode straight: loads itself
    plain = Serde(int, fmt)
    assert plain.loads_again() is plain.loads
