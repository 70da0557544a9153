"""Records: declaration, construction, coercion, errors, repr, descriptors, equality."""
from __future__ import annotations

import copy
import pickle
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, Optional

import pytest

from streamkit.errors import DecodeError, ImproperlyConfigured, ValidationError
from streamkit.models import MISSING, FieldDescriptor, Record


class TaxiRide(Record, serializer="json", validation=True, coerce=True):
    vendorId: int
    total_amount: float = 0.0
    pickup: datetime | None = None


class Address(Record):
    street: str
    zip: int


class Color(Enum):
    RED = "red"
    BLUE = "blue"


class Customer(Record, serializer="msgpack"):
    name: str
    address: Address
    previous: list[Address] = []
    tags: list[str] = []
    scores: dict[str, float] = {}
    balance: Decimal = Decimal("0")
    birthday: Optional[date] = None
    color: Color = Color.RED
    extra: Any = None


class Strict(Record, coerce=False):
    n: int
    x: float
    s: str


class Loose(Record, validation=False):
    n: int


class Node(Record):
    name: str
    children: list[Node] = []


class Child(TaxiRide):
    note: str = ""


class WithClassVar(Record):
    kind: ClassVar[str] = "ride"
    n: int


class PostInit(Record):
    a: int
    b: int = 0

    def __post_init__(self) -> None:
        self.b = self.a * 2


# ------------------------------------------------------------------ declaration


def test_fields_in_declaration_order_with_descriptors() -> None:
    assert list(TaxiRide._fields) == ["vendorId", "total_amount", "pickup"]
    fd = TaxiRide.vendorId
    assert isinstance(fd, FieldDescriptor)
    assert TaxiRide._fields["vendorId"] is fd
    assert (fd.field, fd.type, fd.required, fd.default) == ("vendorId", int, True, MISSING)
    amount = TaxiRide.total_amount
    assert (amount.type, amount.required, amount.default) == (float, False, 0.0)
    assert TaxiRide.pickup.type == (datetime | None)
    assert fd.ident == "TaxiRide.vendorId"
    assert repr(fd) == "<FieldDescriptor: TaxiRide.vendorId: int>"


def test_descriptor_getattr_reads_the_value() -> None:
    ride = TaxiRide(vendorId=7, total_amount=1.5)
    assert TaxiRide.vendorId.getattr(ride) == 7
    assert TaxiRide.total_amount.getattr(ride) == 1.5
    assert ride.vendorId == 7  # instance read: the plain value


def test_class_options() -> None:
    assert TaxiRide._options.serializer == "json"
    assert TaxiRide._options.validation is True and TaxiRide._options.coerce is True
    assert Strict._options.coerce is False
    assert Customer._options.serializer == "msgpack"
    assert TaxiRide._options.namespace == f"{__name__}.TaxiRide"
    assert Child._options.serializer == "json"  # inherited


def test_namespace_option() -> None:
    class Named(Record, namespace="com.example.Named"):
        a: int
    assert Named._options.namespace == "com.example.Named"


def test_inheritance_appends_fields() -> None:
    assert list(Child._fields) == ["vendorId", "total_amount", "pickup", "note"]
    c = Child(vendorId=1, note="x")
    assert repr(c) == "<Child: vendorId=1, total_amount=0.0, pickup=None, note='x'>"
    assert Child.vendorId.model is Child


def test_classvar_is_not_a_field() -> None:
    assert list(WithClassVar._fields) == ["n"]
    assert WithClassVar.kind == "ride"


def test_field_clashing_with_record_api_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"Bad\.dumps: field name clashes"):
        class Bad(Record):
            dumps: int


def test_self_referencing_record() -> None:
    tree = Node.from_data({"name": "a", "children": [{"name": "b"}]})
    assert tree.children == [Node(name="b")]


# ------------------------------------------------------------------ construction


def test_keyword_and_positional_construction() -> None:
    assert TaxiRide(vendorId=1, total_amount=9.3) == TaxiRide(1, 9.3)
    assert TaxiRide(1).total_amount == 0.0
    assert TaxiRide(1).pickup is None


def test_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="vendorID"):
        TaxiRide(vendorID=1)


def test_repr_exact() -> None:
    ride = TaxiRide(vendorId=1, total_amount=9.3)
    assert repr(ride) == "<TaxiRide: vendorId=1, total_amount=9.3, pickup=None>"
    assert repr(Address("Main", 1)) == "<Address: street='Main', zip=1>"


def test_coercion_of_numbers_and_strings() -> None:
    ride = TaxiRide(vendorId="42", total_amount="9.3")
    assert ride.vendorId == 42 and type(ride.vendorId) is int
    assert ride.total_amount == 9.3
    one = TaxiRide(vendorId=1, total_amount=1)
    assert type(one.total_amount) is float and one.total_amount == 1.0
    assert TaxiRide(vendorId=3.0).vendorId == 3
    assert Address(street=12, zip=1).street == "12"


def test_datetime_coercion() -> None:
    naive = TaxiRide(1, pickup="2020-07-01 00:25:32").pickup
    assert naive == datetime(2020, 7, 1, 0, 25, 32)
    zulu = TaxiRide(1, pickup="2020-07-01T00:25:32Z").pickup
    assert zulu == datetime(2020, 7, 1, 0, 25, 32, tzinfo=timezone.utc)
    epoch = TaxiRide(1, pickup=1593563132).pickup
    assert epoch == datetime(2020, 7, 1, 0, 25, 32, tzinfo=timezone.utc)
    assert TaxiRide(1, pickup=1593563132.5).pickup.microsecond == 500000
    dt = datetime(2021, 1, 1)
    assert TaxiRide(1, pickup=dt).pickup is dt


def test_decimal_enum_date_and_containers() -> None:
    c = Customer.from_data({
        "name": "ann", "address": {"street": "Main", "zip": "1000"},
        "previous": [{"street": "Old", "zip": 1}], "tags": ["a", "b"],
        "scores": {"x": 1, "y": "2.5"}, "balance": "12.30", "birthday": "1990-02-03",
        "color": "blue", "extra": {"anything": [1]},
    })
    assert c.address == Address("Main", 1000)
    assert c.previous == [Address("Old", 1)]
    assert c.scores == {"x": 1.0, "y": 2.5}
    assert c.balance == Decimal("12.30")
    assert c.birthday == date(1990, 2, 3)
    assert c.color is Color.BLUE
    assert c.extra == {"anything": [1]}
    assert Customer(name="a", address=Address("s", 1), balance=9.3).balance == \
        Decimal("9.3")


def test_mutable_defaults_are_not_shared() -> None:
    a = Customer(name="a", address=Address("s", 1))
    b = Customer(name="b", address=Address("s", 1))
    a.tags.append("x")
    assert b.tags == []


def test_post_init_runs() -> None:
    assert PostInit(a=2).b == 4
    assert PostInit.from_data({"a": 3}).b == 6


def test_without_coerce_strings_are_not_numbers() -> None:
    with pytest.raises(ValidationError,
                       match=r"^Strict\.n: expected int, got '1' \(str\)$"):
        Strict(n="1", x=1.0, s="a")
    with pytest.raises(ValidationError, match=r"^Strict\.s: expected str, got 5 \(int\)$"):
        Strict(n=1, x=1.0, s=5)
    assert Strict(n=1, x=2, s="a").x == 2.0  # int is a float (numeric tower)


def test_without_validation_values_are_kept() -> None:
    assert Loose(n="abc").n == "abc"
    assert Loose(n="5").n == 5  # still coerced when it can be
    with pytest.raises(ValidationError, match="missing required field"):
        Loose()


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("kwargs, message", [
    ({"vendorId": "abc"}, "TaxiRide.vendorId: expected int, got 'abc' (str)"),
    ({"vendorId": True}, "TaxiRide.vendorId: expected int, got True (bool)"),
    ({"vendorId": 1.5}, "TaxiRide.vendorId: expected int, got 1.5 (float)"),
    ({"vendorId": None}, "TaxiRide.vendorId: expected int, got None (NoneType)"),
    ({}, "TaxiRide.vendorId: missing required field"),
    ({"vendorId": 1, "total_amount": "x"},
     "TaxiRide.total_amount: expected float, got 'x' (str)"),
    ({"vendorId": 1, "total_amount": False},
     "TaxiRide.total_amount: expected float, got False (bool)"),
    ({"vendorId": 1, "pickup": "yesterday"},
     "TaxiRide.pickup: expected datetime, got 'yesterday' (str): "
     "not an ISO-8601 date-time"),
    ({"vendorId": 1, "pickup": [1]},
     "TaxiRide.pickup: expected datetime, got [1] (list)"),
])
def test_validation_error_messages(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        TaxiRide(**kwargs)
    assert str(info.value) == message


def test_validation_error_carries_record_field_value() -> None:
    with pytest.raises(ValidationError) as info:
        TaxiRide(vendorId="abc")
    err = info.value
    assert (err.record, err.field, err.value) == ("TaxiRide", "vendorId", "abc")
    assert isinstance(err, ValueError)


def test_nested_and_container_error_messages() -> None:
    with pytest.raises(ValidationError) as info:
        Customer.from_data({"name": "a", "address": {"street": "s", "zip": "x"}})
    assert str(info.value) == \
        "Customer.address: Address.zip: expected int, got 'x' (str)"
    with pytest.raises(ValidationError) as info:
        Customer.from_data({"name": "a", "address": {"street": "s", "zip": 1},
                            "tags": ["a", None]})
    assert str(info.value) == "Customer.tags[1]: expected str, got None (NoneType)"
    with pytest.raises(ValidationError) as info:
        Customer.from_data({"name": "a", "address": {"street": "s", "zip": 1},
                            "scores": {"k": "high"}})
    assert str(info.value) == "Customer.scores['k']: expected float, got 'high' (str)"
    with pytest.raises(ValidationError) as info:
        Customer.from_data({"name": "a", "address": {"street": "s"}})
    assert str(info.value) == "Customer.address: Address.zip: missing required field"


def test_long_values_are_shortened_in_messages() -> None:
    with pytest.raises(ValidationError) as info:
        TaxiRide(vendorId="x" * 500)
    assert len(str(info.value)) < 150
    assert str(info.value).endswith("... (str)")


def test_from_data_ignores_unknown_fields() -> None:
    ride = TaxiRide.from_data({"vendorId": 2, "surcharge": 1.0, "__faust": {"ns": "x"}})
    assert ride == TaxiRide(vendorId=2)


def test_from_data_of_a_non_mapping() -> None:
    with pytest.raises(ValidationError, match=r"^TaxiRide: expected a mapping of "
                                              r"fields, got \[1, 2\] \(list\)$"):
        TaxiRide.from_data([1, 2])


def test_from_data_does_not_touch_the_input() -> None:
    data = {"vendorId": "5", "total_amount": 1}
    TaxiRide.from_data(data)
    assert data == {"vendorId": "5", "total_amount": 1}


# ------------------------------------------------------------------ values


def test_equality_and_hash_by_value() -> None:
    a = TaxiRide(1, 9.3, "2020-07-01 00:25:32")
    b = TaxiRide(vendorId=1, total_amount=9.3, pickup=datetime(2020, 7, 1, 0, 25, 32))
    assert a == b and hash(a) == hash(b)
    assert a != TaxiRide(2, 9.3)
    assert len({a, b, TaxiRide(2)}) == 2
    assert a != Child(1, 9.3, "2020-07-01 00:25:32")  # different class
    assert a != {"vendorId": 1}


def test_asdict_and_to_representation() -> None:
    c = Customer(name="a", address=Address("s", 1), balance=Decimal("1.50"),
                 birthday=date(2000, 1, 2), previous=[Address("o", 2)])
    d = c.asdict()
    assert d["address"] == {"street": "s", "zip": 1}
    assert d["previous"] == [{"street": "o", "zip": 2}]
    assert d["balance"] == Decimal("1.50") and d["birthday"] == date(2000, 1, 2)
    assert d["color"] is Color.RED
    rep = c.to_representation()
    assert rep["balance"] == "1.50" and rep["birthday"] == "2000-01-02"
    assert rep["color"] == "red" and rep["address"] == {"street": "s", "zip": 1}
    ride = TaxiRide(1, 2.0, "2020-07-01 00:25:32")
    assert ride.asdict() == {"vendorId": 1, "total_amount": 2.0,
                             "pickup": datetime(2020, 7, 1, 0, 25, 32)}
    assert ride.to_representation()["pickup"] == "2020-07-01T00:25:32"


def test_pickle_and_copy() -> None:
    c = Customer(name="a", address=Address("s", 1), tags=["x"])
    for proto in range(2, pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(c, protocol=proto)) == c
    assert pickle.loads(pickle.dumps(TaxiRide.vendorId)) is TaxiRide.vendorId
    deep = copy.deepcopy(c)
    assert deep == c and deep.tags is not c.tags
    assert copy.copy(c) == c


def test_records_have_no_instance_dict() -> None:
    ride = TaxiRide(1)
    with pytest.raises(AttributeError):
        ride.not_a_field = 1  # type: ignore[attr-defined]
    ride.total_amount = 3.0  # fields stay assignable
    assert ride.total_amount == 3.0


def test_match_args() -> None:
    match TaxiRide(4, 1.0):
        case TaxiRide(vendor, amount):
            assert (vendor, amount) == (4, 1.0)


# ------------------------------------------------------------------ dumps/loads


def test_dumps_loads_with_class_serializer() -> None:
    ride = TaxiRide(1, 9.3, "2020-07-01 00:25:32")
    data = ride.dumps()
    assert data == (b'{"vendorId":1,"total_amount":9.3,'
                    b'"pickup":"2020-07-01T00:25:32"}')
    assert TaxiRide.loads(data) == ride
    packed = ride.dumps(serializer="msgpack")
    assert TaxiRide.loads(packed, serializer="msgpack") == ride


def test_loads_errors() -> None:
    with pytest.raises(DecodeError, match=r"^TaxiRide\.loads: invalid json: Expecting"):
        TaxiRide.loads(b"{not json")
    with pytest.raises(ValidationError, match=r"TaxiRide\.vendorId: expected int"):
        TaxiRide.loads(b'{"vendorId": "x"}')


def test_record_with_default_serializer_is_json() -> None:
    assert Address("s", 1).dumps() == b'{"street":"s","zip":1}'


# ------------------------------------------------------------------ more types

from typing import Literal  # noqa: E402
from uuid import UUID  # noqa: E402


class Misc(Record):
    flag: bool = False
    ids: set[int] = set()
    pair: tuple[int, str] = (0, "")
    many: tuple[float, ...] = ()
    uid: UUID | None = None
    mode: Literal["a", "b"] = "a"
    either: int | str = 0
    raw: bytes = b""


def test_bool_coercion() -> None:
    assert Misc(flag="true").flag is True and Misc(flag="No").flag is False
    assert Misc(flag=1).flag is True
    with pytest.raises(ValidationError,
                       match=r"^Misc\.flag: expected bool, got 2 \(int\)$"):
        Misc(flag=2)


def test_collections_uuid_literal_union_bytes() -> None:
    m = Misc.from_data({"ids": [1, "2", 2], "pair": ["5", 6], "many": [1, "2.5"],
                        "uid": "12345678-1234-5678-1234-567812345678", "mode": "b",
                        "either": "x", "raw": "AAE="})
    assert m.ids == {1, 2}
    assert m.pair == (5, "6") and m.many == (1.0, 2.5)
    assert m.uid == UUID("12345678-1234-5678-1234-567812345678")
    assert m.mode == "b" and m.either == "x" and m.raw == b"\x00\x01"
    assert Misc(either=3).either == 3
    with pytest.raises(ValidationError, match=r"^Misc\.mode: expected Literal\['a', 'b'\], "
                                              r"got 'c' \(str\)$"):
        Misc(mode="c")
    with pytest.raises(ValidationError, match=r"^Misc\.pair: expected tuple\[int, str\]"):
        Misc(pair=[1])
    with pytest.raises(ValidationError, match=r"^Misc\.raw: expected bytes, got '%%' "
                                              r"\(str\): not base64$"):
        Misc(raw="%%")
    assert Misc.loads(m.dumps()) == m
    assert Misc.loads(m.dumps("msgpack"), "msgpack") == m


def test_redeclared_field_keeps_its_position() -> None:
    class Base(Record):
        a: int
        b: int = 1

    class Derived(Base):
        a: str = "x"

    assert list(Derived._fields) == ["a", "b"]
    assert Derived._fields["a"].type is str and Derived().a == "x"


def test_string_annotations_resolve_local_names() -> None:
    # This module uses `from __future__ import annotations`: every annotation here is
    # a string, including ones naming classes local to this function.
    class Inner(Record):
        v: int

    class Outer(Record):
        inner: Inner
        maybe: Inner | None = None
        quoted: "int" = 0

    o = Outer.from_data({"inner": {"v": "1"}, "quoted": "2"})
    assert o.inner == Inner(1) and o.quoted == 2
    assert Outer.maybe.type == (Inner | None)


def test_unresolvable_annotation_is_named() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"Broken\.x: cannot resolve annotation"):
        class Broken(Record):
            x: "NoSuchType"  # noqa: F821  # pyflakes: intended


class Awkward(Record):
    type: str
    str: int = 0
    float: float = 0.0  # noqa: A003
    int: "datetime | None" = None
    self: int = 0
    d: int = 0
    v: int = 0
    data: int = 0


def test_field_names_shadowing_builtins_and_generated_locals() -> None:
    a = Awkward(type="x", str="5", float=1, int="2020-01-01 00:00:00", self=1, d=2, v=3,
                data=4)
    assert (a.type, a.str, a.float, a.self, a.d, a.v, a.data) == ("x", 5, 1.0, 1, 2, 3, 4)
    assert a.int == datetime(2020, 1, 1)
    assert Awkward.loads(a.dumps()) == a
    assert Awkward.loads(a.dumps("msgpack"), "msgpack") == a
    with pytest.raises(ValidationError, match=r"^Awkward\.str: expected int"):
        Awkward(type="x", str="no")


def test_huge_int_for_a_float_field() -> None:
    with pytest.raises(ValidationError, match=r"^TaxiRide\.total_amount: expected float"):
        TaxiRide(vendorId=1, total_amount=10**400)
    assert TaxiRide.from_data({"vendorId": 1, "total_amount": 12}).total_amount == 12.0


def test_derive() -> None:
    ride = TaxiRide(1, 9.3)
    assert ride.derive(total_amount="10") == TaxiRide(1, 10.0)
    assert ride.derive(TaxiRide(2, 1.0, 0)).vendorId == 2
    with pytest.raises(ValidationError, match=r"^TaxiRide\.vendorId: expected int"):
        ride.derive(vendorId="x")
    with pytest.raises(TypeError):
        ride.derive(nope=1)


def test_faust_only_class_options_are_accepted() -> None:
    class FaustStyle(Record, validation=True, isodates=True, include_metadata=False,
                     decimals=True):
        vendorId: str
        when: datetime | None = None

    assert FaustStyle(vendorId=1, when="2020-07-01 00:25:32").vendorId == "1"
    with pytest.raises(TypeError):
        class Typo(Record, serialiser="json"):  # not an option
            a: int


def test_two_record_bases_with_fields_are_refused_clearly() -> None:
    class A(Record):
        a: int

    class B(Record):
        b: int

    class Mixin:
        def doubled(self) -> int:
            return self.a * 2  # type: ignore[attr-defined]

    with pytest.raises(ImproperlyConfigured, match=r"^C: fields can come from one "
                                                   r"Record base only"):
        class C(A, B):
            c: int

    class D(A, Mixin):
        d: int = 0

    assert D(2).doubled() == 4 and repr(D(2)) == "<D: a=2, d=0>"


def test_newtype_annotated_sequence_and_literal_edges() -> None:
    from collections.abc import Sequence
    from typing import Annotated, NewType

    UserId = NewType("UserId", int)

    class Edges(Record):
        user: UserId
        score: Annotated[float, "points"] = 0.0
        seq: Sequence[int] = ()
        lit: Literal[1, 2] = 1

    e = Edges(user="7", score="1.5", seq=("1", 2))
    assert (e.user, e.score, e.seq) == (7, 1.5, [1, 2])
    with pytest.raises(ValidationError, match=r"^Edges\.lit: expected Literal\[1, 2\], "
                                              r"got True \(bool\)$"):
        Edges(user=1, lit=True)
    with pytest.raises(ValidationError, match=r"^Edges\.lit: expected"):
        Edges(user=1, lit=[1])
