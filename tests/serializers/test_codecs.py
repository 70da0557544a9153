"""Codecs (json, msgpack, raw, registry) and Serde (how topics decode keys/values)."""
from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.errors import (DecodeError, ImproperlyConfigured, UnknownCodec,
                              ValidationError)
from streamkit.models import Record
from streamkit.serializers import Serde, codecs


class Ride(Record):
    vendorId: int
    passenger_count: int
    trip_distance: float
    payment_type: int
    total_amount: float
    pickup: datetime | None = None


class Item(Record):
    sku: str
    price: Decimal
    blob: bytes = b""


class Order(Record, serializer="msgpack"):
    id: int
    items: list[Item]
    meta: dict[str, str] = {}
    when: datetime | None = None


# ------------------------------------------------------------------ registry


def test_builtin_codecs_are_registered() -> None:
    assert {"json", "msgpack", "raw"} <= set(codecs.names())
    assert codecs.get("json") is codecs.get("json")


def test_unknown_codec_names_the_known_ones() -> None:
    with pytest.raises(UnknownCodec) as info:
        codecs.get("yaml")
    text = str(info.value)
    assert text.startswith("unknown serializer 'yaml'; known serializers: ")
    assert "json, msgpack, raw" in text
    assert isinstance(info.value, ImproperlyConfigured)
    with pytest.raises(UnknownCodec, match="unknown serializer 'yaml'"):
        Serde(None, "yaml")


def test_register_a_custom_codec() -> None:
    class Reversed:
        def dumps(self, obj: object) -> bytes:
            return str(obj)[::-1].encode()

        def loads(self, data: bytes) -> str:
            return data.decode()[::-1]

    codecs.register("reversed", Reversed)
    assert codecs.get("reversed").dumps("abc") == b"cba"
    serde = Serde(str, "reversed")
    assert serde.dumps("hello") == b"olleh"
    assert serde.loads(b"olleh") == "hello"
    with pytest.raises(TypeError, match="must have dumps"):
        codecs.register("broken", object())


def test_a_codec_object_can_be_passed_instead_of_a_name() -> None:
    codec = codecs.MsgpackCodec()
    assert codecs.get(codec) is codec
    assert Serde(Ride, codec).loads(codec.dumps({"vendorId": 1, "passenger_count": 1,
                                                  "trip_distance": 1.0,
                                                  "payment_type": 1,
                                                  "total_amount": 1.0})).vendorId == 1


# ------------------------------------------------------------------ json


def test_json_wire_forms() -> None:
    j = codecs.get("json")
    data = j.dumps({"t": datetime(2020, 7, 1, 0, 25, 32), "d": Decimal("1.10"),
                    "b": b"\x00\xff", "s": {1}, "u": "é"})
    assert data == ('{"t":"2020-07-01T00:25:32","d":"1.10","b":"AP8=","s":[1],'
                    '"u":"é"}').encode()
    assert j.loads(data)["u"] == "é"


def test_json_loads_accepts_whitespace_and_rejects_garbage() -> None:
    j = codecs.get("json")
    assert j.loads(b'  {"a": 1}\n') == {"a": 1}
    assert j.loads('[1]') == [1]
    with pytest.raises(ValueError, match="Extra data"):
        j.loads(b'{"a": 1} x')
    with pytest.raises(ValueError, match="Expecting value"):
        j.loads(b"")
    with pytest.raises(UnicodeDecodeError):
        j.loads(b"\xff\xfe")


def test_json_refuses_unknown_objects() -> None:
    with pytest.raises(TypeError, match="cannot encode object"):
        codecs.get("json").dumps({"x": object()})


# ------------------------------------------------------------------ msgpack


def test_msgpack_records_are_maps_with_iso_datetimes() -> None:
    ride = Ride(1, 2, 3.5, 1, 12.0, "2020-07-01 00:25:32")
    raw = msgpack.unpackb(codecs.get("msgpack").dumps(ride))
    assert raw == {"vendorId": 1, "passenger_count": 2, "trip_distance": 3.5,
                   "payment_type": 1, "total_amount": 12.0,
                   "pickup": "2020-07-01T00:25:32"}


def test_msgpack_int_map_keys() -> None:
    m = codecs.get("msgpack")
    assert m.loads(m.dumps({1: "a", 2: "b"})) == {1: "a", 2: "b"}


@pytest.mark.parametrize("reader", ["loads", "loads_many"])
def test_msgpack_payload_with_extra_or_missing_bytes_is_a_decode_error(
        reader: str) -> None:
    # The fast decoder ignores trailing bytes on its own; a payload that is not
    # exactly one msgpack object must still fail, as msgpack.unpackb would.
    serde = Serde(Ride, "msgpack")
    good = serde.dumps(Ride(1, 1, 1.0, 1, 1.0))
    for bad, message in [(good + b"\x01", "received extra data"),
                         (good[:-1], "incomplete input"), (good + good, "extra data")]:
        if reader == "loads":
            with pytest.raises(DecodeError, match=message) as info:
                serde.loads(bad)
            assert info.value.data == bad
        else:
            errors: list = []
            out = serde.loads_many([good, bad, good], errors)
            assert [i for i, _ in errors] == [1]
            assert out[0] == out[2] == Ride(1, 1, 1.0, 1, 1.0)


def test_msgpack_nil_payload_in_a_batch_is_not_a_tombstone() -> None:
    # b"\xc0" is a payload (msgpack nil), not a missing value: it is not a Ride.
    serde = Serde(Ride, "msgpack")
    good = serde.dumps(Ride(1, 1, 1.0, 1, 1.0))
    errors: list = []
    out = serde.loads_many([good, b"\xc0", None, good], errors)
    assert [i for i, _ in errors] == [1] and out[2] is None
    assert "Ride: expected a mapping of fields, got None" in str(errors[0][1])
    assert out[0] == out[3] == Ride(1, 1, 1.0, 1, 1.0)


def test_msgpack_records_with_int_keys_and_ext_types_in_a_batch() -> None:
    # What the fast decoder refuses (int map keys, the timestamp extension) is decoded
    # by the careful path, in a batch as alone.
    class Scores(Record, serializer="msgpack"):
        by_zone: dict[int, float]

    serde = Serde(Scores)
    payloads = [msgpack.packb({"by_zone": {1: 2.5, 7: 1.0}}),
                msgpack.packb({"by_zone": {"3": 1}}, use_bin_type=True)]
    assert [s.by_zone for s in serde.loads_many(payloads)] == [{1: 2.5, 7: 1.0},
                                                                {3: 1.0}]
    when = datetime(2020, 7, 1, 0, 25, 32, tzinfo=timezone.utc)
    ride = {"vendorId": 1, "passenger_count": 1, "trip_distance": 1.0,
            "payment_type": 1, "total_amount": 2.0, "pickup": when}
    out = Serde(Ride, "msgpack").loads_many([msgpack.packb(ride, datetime=True)] * 2)
    assert [r.pickup for r in out] == [when, when]


def _exact(value):
    """``value`` with every type made part of its equality (True != 1, NaN == NaN)."""
    if isinstance(value, (list, tuple)):
        return ("seq", [_exact(v) for v in value])
    if isinstance(value, dict):
        return ("map", [(_exact(k), _exact(v)) for k, v in value.items()])
    if isinstance(value, float):
        return ("float", struct.pack(">d", value))
    return (type(value).__name__, value)


_msgpack_leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                            st.floats(), st.text(max_size=20), st.binary(max_size=20))
_msgpack_values = st.recursive(
    _msgpack_leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.text(max_size=6), st.integers(0, 9)), inner,
                        max_size=5)), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(value=_msgpack_values, tail=st.binary(min_size=1, max_size=3),
       cut=st.integers(1, 3), noise=st.binary(max_size=12))
def test_msgpack_fast_decoder_accepts_only_what_msgpack_accepts(value, tail, cut, noise):
    # The fast decoder may refuse more (the careful path decides then), never accept
    # more, and never decode to anything else.
    codec = codecs.get("msgpack")
    good = msgpack.packb(value)
    for data in (good, good + tail, good[:-cut], noise, bytes(reversed(good))):
        try:
            expected = _exact(msgpack.unpackb(data))
        except Exception:
            expected = None
        for fast in (codec.fast_loads, lambda data: codec.fast_loads_many([data])[0]):
            try:
                got = _exact(fast(data))
            except Exception:
                continue
            assert got == expected, data


# ------------------------------------------------------------------ raw


def test_raw_codec() -> None:
    raw = codecs.get("raw")
    assert raw.dumps(b"\x00x") == b"\x00x"
    assert raw.dumps("é") == "é".encode()
    assert raw.dumps(bytearray(b"ab")) == b"ab"
    assert raw.loads(b"\x01") == b"\x01"
    with pytest.raises(TypeError, match="raw codec encodes bytes or str, got int"):
        raw.dumps(5)


# ------------------------------------------------------------------ Serde


def test_serde_record_default_serializer_and_override() -> None:
    ride = Ride(1, 1, 2.0, 1, 9.5)
    assert Serde(Ride).serializer == "json"
    assert Serde(Order).serializer == "msgpack"  # the Record's own
    for name in ("json", "msgpack"):
        serde = Serde(Ride, name)
        assert serde.loads(serde.dumps(ride)) == ride


def test_serde_record_accepts_dicts_and_passes_bytes() -> None:
    serde = Serde(Ride)
    data = serde.dumps({"vendorId": "2", "passenger_count": 1, "trip_distance": 1,
                        "payment_type": 1, "total_amount": 1})
    assert serde.loads(data) == Ride(2, 1, 1.0, 1, 1.0)
    assert serde.dumps(b"already encoded") == b"already encoded"
    assert serde.dumps(None) is None and serde.loads(None) is None
    with pytest.raises(TypeError, match="expected Ride .or a dict of its fields., got str"):
        serde.dumps("nope")


def test_serde_plain_types() -> None:
    assert Serde(str).loads(b"caf\xc3\xa9") == "café"
    assert Serde(str).dumps("café") == b"caf\xc3\xa9"
    assert Serde(bytes).loads(b"\x00") == b"\x00"
    assert Serde(bytes).dumps("a") == b"a"
    assert Serde(int).loads(b"5") == 5 and Serde(int).loads(b'"6"') == 6
    assert Serde(int).dumps(5) == b"5"
    assert Serde(float).loads(b"1") == 1.0
    assert Serde(str, "json").loads(b'"x"') == "x"
    assert Serde().loads(b'{"a": [1, null]}') == {"a": [1, None]}
    assert Serde().dumps({"a": 1}) == b'{"a":1}'
    assert Serde(None, "raw").loads(b"x") == b"x"
    assert Serde(None, "msgpack").loads(msgpack.packb([1, "a"])) == [1, "a"]
    with pytest.raises(TypeError, match="expected str, got int"):
        Serde(str).dumps(5)


@pytest.mark.parametrize("serde, data, message", [
    (Serde(Ride), b'{"vendorId": ', "cannot decode Ride (json): Expecting value"),
    (Serde(Ride), b'{"vendorId": "x"}',
     "cannot decode Ride (json): Ride.vendorId: expected int, got 'x' (str)"),
    (Serde(Ride), b'[1, 2]',
     "cannot decode Ride (json): Ride: expected a mapping of fields, got [1, 2] (list)"),
    (Serde(Ride), b'{"vendorId": 1}',
     "cannot decode Ride (json): Ride.passenger_count: missing required field"),
    (Serde(Ride, "msgpack"), b"\xc1", "cannot decode Ride (msgpack): "),
    (Serde(str), b"\xff", "cannot decode str (raw): 'utf-8' codec can't decode"),
    (Serde(int), b'"x"', "cannot decode int (json): value: expected int, got 'x'"),
    (Serde(), b"{", "cannot decode json: Expecting property name"),
])
def test_serde_decode_errors(serde: Serde, data: bytes, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        serde.loads(data)
    assert str(info.value).startswith(message)
    assert info.value.__cause__ is not None
    assert info.value.data == data


def test_loads_many_decodes_a_batch() -> None:
    serde = Serde(Ride, "msgpack")
    rides = [Ride(i, 1, 1.0, 1, float(i)) for i in range(5)]
    payloads = [serde.dumps(r) for r in rides] + [None]
    assert serde.loads_many(payloads) == rides + [None]
    assert Serde().loads_many([b"1", b'"a"', None]) == [1, "a", None]


def test_loads_many_with_poison_messages() -> None:
    serde = Serde(Ride)
    good = serde.dumps(Ride(1, 1, 1.0, 1, 1.0))
    batch = [good, b"not json", good, b'{"vendorId": "x"}']
    with pytest.raises(DecodeError, match="Expecting value"):
        serde.loads_many(batch)
    errors: list = []
    out = serde.loads_many(batch, errors)
    assert [i for i, _ in errors] == [1, 3]
    assert out[0] == out[2] == Ride(1, 1, 1.0, 1, 1.0)
    assert out[1] is errors[0][1] and isinstance(out[3], DecodeError)
    assert "Ride.vendorId: expected int" in str(errors[1][1])


def test_loads_many_missing_fields_take_defaults() -> None:
    serde = Serde(Ride, "msgpack")
    payload = msgpack.packb({"vendorId": 1, "passenger_count": 1, "trip_distance": 1.0,
                             "payment_type": 1, "total_amount": 2, "x": 1})
    assert serde.loads_many([payload]) == [Ride(1, 1, 1.0, 1, 2.0, None)]


# ------------------------------------------------------------------ round trips

_ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_floats = st.floats(allow_nan=False, allow_infinity=False)
_datetimes = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1),
                 timezones=st.sampled_from([timezone.utc,
                                            timezone(timedelta(hours=-5))])),
)
_rides = st.builds(Ride, vendorId=_ints, passenger_count=_ints, trip_distance=_floats,
                   payment_type=_ints, total_amount=_floats, pickup=_datetimes)
_items = st.builds(Item, sku=st.text(), blob=st.binary(max_size=20),
                   price=st.decimals(allow_nan=False, allow_infinity=False))
_orders = st.builds(Order, id=_ints, items=st.lists(_items, max_size=3),
                    meta=st.dictionaries(st.text(max_size=5), st.text(max_size=5),
                                         max_size=3),
                    when=_datetimes)


@settings(max_examples=150, deadline=None)
@given(ride=_rides, codec=st.sampled_from(["json", "msgpack"]))
def test_ride_round_trip(ride: Ride, codec: str) -> None:
    serde = Serde(Ride, codec)
    data = serde.dumps(ride)
    assert serde.loads(data) == ride
    assert serde.loads_many([data]) == [ride]
    assert Ride.loads(ride.dumps(codec), codec) == ride


@settings(max_examples=100, deadline=None)
@given(order=_orders, codec=st.sampled_from(["json", "msgpack"]))
def test_nested_round_trip(order: Order, codec: str) -> None:
    assert Order.loads(order.dumps(codec), codec) == order
    assert Order.from_data(order.asdict()) == order
    assert Order.from_data(order.to_representation()) == order


@settings(max_examples=100, deadline=None)
@given(value=st.recursive(
    st.none() | st.booleans() | _ints | _floats | st.text(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=12),
    codec=st.sampled_from(["json", "msgpack"]))
def test_plain_value_round_trip(value: object, codec: str) -> None:
    serde = Serde(None, codec)
    assert serde.loads(serde.dumps(value)) == value


@settings(max_examples=100, deadline=None)
@given(data=st.binary())
def test_raw_round_trip(data: bytes) -> None:
    serde = Serde(bytes)
    assert serde.loads(serde.dumps(data)) == data


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=64))
def test_garbage_never_escapes_as_anything_but_decode_error(data: bytes) -> None:
    for codec in ("json", "msgpack"):
        try:
            Serde(Ride, codec).loads(data)
        except DecodeError:
            pass


class Doubled(Record):
    a: int
    b: int = 0

    def __post_init__(self) -> None:
        self.b = self.a * 2


class Lenient(Record, validation=False):
    n: int
    when: datetime | None = None


def test_batch_decoder_runs_post_init_and_keeps_lenient_values() -> None:
    serde = Serde(Doubled, "msgpack")
    assert serde.loads_many([msgpack.packb({"a": 2, "b": 0})]) == [Doubled(a=2)]
    assert serde.loads_many([msgpack.packb({"a": 2, "b": 0})])[0].b == 4
    lenient = Serde(Lenient, "json")
    out = lenient.loads_many([b'{"n": "x", "when": "soon"}', b'{"n": "3"}'])
    assert (out[0].n, out[0].when) == ("x", "soon")
    assert out[1].n == 3


def test_non_mapping_payloads_in_a_batch() -> None:
    serde = Serde(Ride, "msgpack")
    good = serde.dumps(Ride(1, 1, 1.0, 1, 1.0))
    errors: list = []
    out = serde.loads_many([good, msgpack.packb([1, 2]), msgpack.packb("s"), good],
                           errors)
    assert [i for i, _ in errors] == [1, 2]
    assert "Ride: expected a mapping of fields, got [1, 2] (list)" in str(errors[0][1])
    assert out[0] == out[3]


def test_post_init_runs_once_on_the_slow_path() -> None:
    calls = []

    class Counted(Record):
        a: int
        b: int = 0

        def __post_init__(self) -> None:
            calls.append(self.a)

    Serde(Counted, "json").loads_many([b'{"a": 1}', b'{"a": 2, "b": 1}'])
    Serde(Counted, "json").loads(b'{"a": 3}')
    assert calls == [1, 2, 3]


@settings(max_examples=100, deadline=None)
@given(ride=_rides)
def test_string_valued_payloads_decode_like_typed_ones(ride: Ride) -> None:
    # Producers fed from CSV send every value as a string.
    as_strings = {k: (None if v is None else
                      v.isoformat(sep=" ") if isinstance(v, datetime) else repr(v))
                  for k, v in ride.asdict().items()}
    serde = Serde(Ride, "json")
    data = codecs.get("json").dumps(as_strings)
    assert serde.loads_many([data]) == [ride]
    assert serde.loads(data) == ride


def test_msgpack_timestamp_extension_is_read_as_datetime() -> None:
    # Producers in other languages may use msgpack's timestamp type for datetimes.
    when = datetime(2020, 7, 1, 0, 25, 32, tzinfo=timezone.utc)
    payload = msgpack.packb({"vendorId": 1, "passenger_count": 1, "trip_distance": 1.0,
                             "payment_type": 1, "total_amount": 1.0, "pickup": when},
                            datetime=True)
    assert Serde(Ride, "msgpack").loads(payload).pickup == when


class Mixed(Record):
    n: int
    x: float
    s: str
    b: bool
    t: datetime | None
    d: Decimal


_any_value = st.one_of(
    st.none(), st.booleans(), _ints, st.floats(allow_nan=False), st.text(max_size=8),
    st.sampled_from(["1", " 2 ", "3.5", "true", "no", "2020-07-01 00:25:32",
                     "2020-07-01T00:25:32Z", "1e3", "x"]),
    st.lists(_ints, max_size=2))


def _outcome(fn: object) -> object:
    try:
        return ("ok", fn())  # type: ignore[operator]
    except ValidationError as exc:
        return ("error", str(exc))


@settings(max_examples=300, deadline=None)
@given(values=st.fixed_dictionaries({k: _any_value for k in Mixed._fields}))
def test_constructor_and_both_decoders_agree(values: dict) -> None:
    # __init__, the single-message decoder and the batch decoder are generated
    # separately: they must accept, convert and reject exactly alike.
    by_init = _outcome(lambda: Mixed(**values))
    by_wire = _outcome(lambda: Mixed.from_data(values))
    serde = Serde(Mixed, "msgpack")
    data = msgpack.packb(values)
    errors: list = []
    batch = serde.loads_many([data], errors)
    by_batch = ("error", str(errors[0][1].__cause__)) if errors else ("ok", batch[0])
    try:
        by_serde = ("ok", serde.loads(data))
    except DecodeError as exc:
        by_serde = ("error", str(exc.__cause__))
    assert by_init == by_wire == by_serde == by_batch


def test_str_keys_in_a_batch_keep_none_and_report_bad_utf8_by_index() -> None:
    # str keys are decoded a batch at a time; one bad key must still be named, alone
    serde = Serde(str)
    assert serde.loads_many([b"a", None, bytearray(b"b"), memoryview(b"c")]) == [
        "a", None, "b", "c"]
    errors: list = []
    out = serde.loads_many([b"t1", b"\xff\xfe", None, b"t2"], errors)
    assert [i for i, _ in errors] == [1]
    assert "utf-8" in str(errors[0][1]) and errors[0][1].data == b"\xff\xfe"
    assert (out[0], out[2], out[3]) == ("t1", None, "t2")
