"""Declaring Records: options, field order and defaults, as decoders and constructors see
them (every Record class is a msgspec Struct, decision 203)."""
from __future__ import annotations

import copy
import inspect
import pickle

import msgpack
import pytest

from streamkit.errors import ImproperlyConfigured
from streamkit.models import MISSING, Record
from streamkit.serializers import Serde


def test_an_unknown_class_option_is_named() -> None:
    with pytest.raises(TypeError, match=r"^Typo: unknown Record option\(s\) serialiser; "
                                        r"Record options are serializer, validation"):
        class Typo(Record, serialiser="json"):
            a: int
    with pytest.raises(TypeError, match="frozen"):  # msgspec's own options are not Record's
        class Frozen(Record, frozen=True):
            a: int


def test_slots_are_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^Slotted: a Record holds its fields"):
        class Slotted(Record):
            __slots__ = ("cache",)
            a: int


class Base(Record):
    a: int = 0
    b: str = "b"


class Sub(Base):
    c: int  # required after fields with defaults


class Redeclared(Base):
    a: int  # no default given here: keeps Base's


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_a_required_field_may_follow_defaults(fmt: str) -> None:
    assert Sub(1, "x", 3) == Sub(a=1, b="x", c=3)
    assert Sub(c=3) == Sub(0, "b", 3)
    assert repr(Sub(c=3)) == "<Sub: a=0, b='b', c=3>"
    serde = Serde(Sub, fmt)
    assert serde.loads(serde.dumps(Sub(c=3))) == Sub(c=3)
    assert serde.loads(serde.codec.dumps({"c": 4})) == Sub(c=4)
    with pytest.raises(Exception, match=r"Sub\.c: missing required field"):
        serde.loads(serde.codec.dumps({"a": 1}))


def test_a_redeclared_field_keeps_its_default_and_place() -> None:
    assert list(Redeclared._fields) == ["a", "b"]
    assert Redeclared._fields["a"].default == 0 and Redeclared().a == 0
    assert Serde(Redeclared, "msgpack").loads(msgpack.packb({"b": "x"})) == \
        Redeclared(0, "x")


def test_the_signature_lists_the_fields() -> None:
    params = inspect.signature(Sub).parameters
    assert list(params) == ["a", "b", "c"]
    assert params["a"].default == 0 and params["c"].default is MISSING


def test_records_of_a_class_made_in_a_function_decode_fast() -> None:
    # Annotations naming a class local to a function resolve for the fast decoder too.
    class Inner(Record):
        v: int

    class Outer(Record):
        inner: Inner
        maybe: Inner | None = None

    serde = Serde(Outer, "msgpack")
    data = msgpack.packb({"inner": {"v": 1}, "maybe": {"v": 2}})
    assert serde._fast is not None  # noqa: SLF001 - the fast decoder is in use
    assert serde.loads(data) == Outer(Inner(1), Inner(2))


class Doubled(Record):
    a: int
    b: int = 0

    def __post_init__(self) -> None:
        self.b = self.a * 2


def test_pickle_and_copies_keep_values_as_they_are() -> None:
    record = Doubled(2)
    record.a = "not checked on assignment"  # type: ignore[assignment]
    for copied in (pickle.loads(pickle.dumps(record)), copy.deepcopy(record),
                   copy.copy(record)):
        assert copied.a == "not checked on assignment" and type(copied) is Doubled
    # pickle and deepcopy build the copy with msgspec's constructor, which runs
    # __post_init__ again; copy.copy copies the values only
    assert pickle.loads(pickle.dumps(record)).b == record.a * 2
    assert copy.copy(record).b == 4


def test_records_of_different_classes_are_not_equal() -> None:
    assert Sub(c=1) != Base() and not (Sub(c=1) == Base())
    assert Sub(c=1) != Sub(c=2) and not (Sub(c=1) != Sub(c=1))
