"""Faust's Record API beyond construction: validate()/is_valid(), an inner
``class Options:``, and the options streamkit refuses with a reason."""
from __future__ import annotations

from datetime import datetime

import pytest

from streamkit import Record
from streamkit.errors import ValidationError


class Point(Record):
    x: int
    y: float = 0.0


class Loose(Record, validation=False):
    x: int


def test_a_constructed_record_is_valid_and_a_reassigned_field_is_not() -> None:
    point = Point(1, 2.5)
    assert point.validate() == [] and point.validation_errors == []
    assert point.is_valid()
    point.validate_or_raise()
    point.x = "not a number"            # fields may be reassigned: validate() sees it
    point.y = "nor this"
    errors = point.validate()
    assert [(e.record, e.field, e.value) for e in errors] == [
        ("Point", "x", "not a number"), ("Point", "y", "nor this")]
    assert all(isinstance(e, ValidationError) for e in errors)
    assert "Point.x" in str(errors[0])
    assert not point.is_valid()
    with pytest.raises(ValidationError, match="Point.x"):
        point.validate_or_raise()


def test_validate_checks_a_class_built_without_validation() -> None:
    loose = Loose("seven")              # accepted: validation=False
    assert loose.x == "seven"
    assert [e.field for e in loose.validate()] == ["x"]


def test_an_inner_options_class_sets_the_options_and_keywords_win() -> None:
    class Packed(Record):
        class Options:
            serializer = "msgpack"
            namespace = "com.example.Packed"
            isodates = True             # Faust's, without effect here

        a: int

    class Both(Record, serializer="json"):
        class Options:
            serializer = "msgpack"
            coerce = False

        a: int

    assert Packed._options.serializer == "msgpack"
    assert Packed._options.namespace == "com.example.Packed"
    assert Packed.loads(Packed(1).dumps()) == Packed(1)
    assert Packed(1).dumps() == b"\x81\xa1a\x01"          # msgpack, not JSON
    assert not hasattr(Packed, "Options")
    assert (Both._options.serializer, Both._options.coerce) == ("json", False)
    with pytest.raises(TypeError, match="unknown Record option.*serialiser"):
        class Typo(Record):
            class Options:
                serialiser = "msgpack"
            a: int


@pytest.mark.parametrize("option, value, instead", [
    ("coercions", {datetime: str}, "convert it in __post_init__"),
    ("date_parser", str, "parse the str in __post_init__"),
])
def test_coercions_and_date_parser_are_refused_naming_the_way_here(
        option: str, value: object, instead: str) -> None:
    with pytest.raises(TypeError, match=f"option {option}= is not supported: .*{instead}"):
        type(Record)("R", (Record,), {"__annotations__": {"a": int}}, **{option: value})
    with pytest.raises(TypeError, match=f"option {option}= is not supported"):
        type(Record)("R", (Record,), {"__annotations__": {"a": int},
                                      "Options": type("Options", (), {option: value})})
