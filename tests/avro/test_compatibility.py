"""Schema evolution accepted and refused per compatibility level, by Avro's rules.

The schemas mirror the course's rides / rides_compatible / rides_non_compatible
variants: v2 adds an optional field with a default; "breaking" changes a field's type.
"""
from __future__ import annotations

import pytest

from streamkit.avro import Schema, can_read, check_level
from streamkit.avro.compatibility import validate_level
from streamkit.errors import InvalidCompatibilityLevel, InvalidSchema


def ride(*fields: dict, name: str = "Ride") -> Schema:
    base = [{"name": "vendor_id", "type": "string"},
            {"name": "passenger_count", "type": "int"},
            {"name": "trip_distance", "type": "double"}]
    return Schema.parse({"type": "record", "name": name, "namespace": "test.rides",
                         "fields": base + list(fields)})


V1 = ride()
ADD_OPTIONAL = ride({"name": "pu_location_id", "type": ["null", "long"], "default": None})
ADD_REQUIRED = ride({"name": "pu_location_id", "type": "long"})
RETYPED = Schema.parse({"type": "record", "name": "Ride", "namespace": "test.rides",
                        "fields": [{"name": "vendor_id", "type": "int"},
                                   {"name": "passenger_count", "type": "int"},
                                   {"name": "trip_distance", "type": "double"}]})
DROP_FIELD = Schema.parse({"type": "record", "name": "Ride", "namespace": "test.rides",
                           "fields": [{"name": "vendor_id", "type": "string"},
                                      {"name": "passenger_count", "type": "int"}]})


@pytest.mark.parametrize("level, new, ok", [
    ("BACKWARD", ADD_OPTIONAL, True),
    ("BACKWARD", ADD_REQUIRED, False),   # new reader has no default for old data
    ("BACKWARD", DROP_FIELD, True),      # reader skips the writer's extra field
    ("BACKWARD", RETYPED, False),
    ("FORWARD", ADD_OPTIONAL, True),
    ("FORWARD", ADD_REQUIRED, True),     # old reader skips the new field
    ("FORWARD", DROP_FIELD, False),      # old reader needs trip_distance, no default
    ("FORWARD", RETYPED, False),
    ("FULL", ADD_OPTIONAL, True),
    ("FULL", ADD_REQUIRED, False),
    ("FULL", DROP_FIELD, False),
    ("NONE", RETYPED, True),
])
def test_levels_accept_and_refuse(level: str, new: Schema, ok: bool) -> None:
    assert (check_level(new, [(1, V1)], level) == []) is ok


def test_refusal_names_the_field_the_rule_and_the_version() -> None:
    [msg] = check_level(RETYPED, [(1, V1)], "BACKWARD")
    assert "Ride.vendor_id" in msg and "TYPE_MISMATCH" in msg and "version 1" in msg
    assert "int" in msg and "string" in msg
    [msg] = check_level(ADD_REQUIRED, [(3, V1)], "BACKWARD")
    assert "Ride.pu_location_id" in msg and "READER_FIELD_MISSING_DEFAULT_VALUE" in msg
    assert "version 3" in msg


def test_promotions_follow_avro() -> None:
    def one(t: str) -> Schema:
        return Schema.parse({"type": "record", "name": "R",
                             "fields": [{"name": "x", "type": t}]})
    allowed = {("int", "long"), ("int", "float"), ("int", "double"), ("long", "float"),
               ("long", "double"), ("float", "double"), ("string", "bytes"),
               ("bytes", "string")}
    kinds = ["int", "long", "float", "double", "string", "bytes", "boolean"]
    for w in kinds:
        for r in kinds:
            assert (not can_read(one(r), one(w))) is (w == r or (w, r) in allowed), (w, r)


def test_transitive_checks_every_earlier_version() -> None:
    # v1 {a}, v2 {} (a dropped), v3 {a: long, no default}: v3 reads v2 data? no: a is
    # missing there without a default. Plain BACKWARD only checks v2.
    def rec(*fields: dict) -> Schema:
        return Schema.parse({"type": "record", "name": "R", "fields": list(fields)})
    v1 = rec({"name": "a", "type": "int"}, {"name": "b", "type": "int"})
    v2 = rec({"name": "b", "type": "int"}, {"name": "c", "type": "string", "default": ""})
    v3 = rec({"name": "b", "type": "int"}, {"name": "c", "type": "string"})
    assert check_level(v3, [(1, v1), (2, v2)], "BACKWARD") == []
    msgs = check_level(v3, [(1, v1), (2, v2)], "BACKWARD_TRANSITIVE")
    assert len(msgs) == 1 and "version 1" in msgs[0] and "R.c" in msgs[0]
    assert check_level(v2, [(1, v1)], "FORWARD") != []
    assert check_level(v3, [(1, v1), (2, v2)], "FULL_TRANSITIVE") != []


def test_record_rename_is_a_name_mismatch_unless_aliased() -> None:
    renamed = ride(name="RideV2")
    [msg] = check_level(renamed, [(1, V1)], "BACKWARD")
    assert "NAME_MISMATCH" in msg
    aliased = Schema.parse({**renamed.definition, "aliases": ["Ride"]})
    assert check_level(aliased, [(1, V1)], "BACKWARD") == []


def test_unions_enums_and_nested_records() -> None:
    def rec(t: object, default: object = None, with_default: bool = False) -> Schema:
        f: dict = {"name": "x", "type": t}
        if with_default:
            f["default"] = default
        return Schema.parse({"type": "record", "name": "R", "fields": [f]})
    # a writer's plain int is read by a reader union holding long
    assert can_read(rec(["null", "long"]), rec("int")) == []
    # a writer union with string cannot be read by a reader of only long
    [inc] = can_read(rec("long"), rec(["null", "long"]))
    assert inc.rule == "TYPE_MISMATCH"
    [inc] = can_read(rec(["null", "int"]), rec("string"))
    assert inc.rule == "MISSING_UNION_BRANCH"
    old = rec({"type": "enum", "name": "Pay", "symbols": ["CASH", "CARD"]})
    new = rec({"type": "enum", "name": "Pay", "symbols": ["CASH", "CARD", "APP"]})
    assert can_read(new, old) == []
    [inc] = can_read(old, new)
    assert inc.rule == "MISSING_ENUM_SYMBOLS" and "APP" in inc.detail
    inner_old = rec({"type": "record", "name": "Loc", "fields": [{"name": "z", "type": "int"}]})
    inner_new = rec({"type": "record", "name": "Loc", "fields": [
        {"name": "z", "type": "int"}, {"name": "borough", "type": "string"}]})
    [inc] = can_read(inner_new, inner_old)
    assert inc.field == "Loc.borough" and inc.path == "/fields/0/type/fields/1"


def test_recursive_schema_terminates() -> None:
    node = Schema.parse({"type": "record", "name": "Node", "fields": [
        {"name": "v", "type": "int"},
        {"name": "next", "type": ["null", "Node"], "default": None}]})
    assert can_read(node, node) == []


def test_levels_are_validated() -> None:
    assert validate_level("full_transitive") == "FULL_TRANSITIVE"
    with pytest.raises(InvalidCompatibilityLevel):
        validate_level("SIDEWAYS")


def test_invalid_schemas_are_refused_with_the_reason() -> None:
    with pytest.raises(InvalidSchema, match="not valid JSON"):
        Schema.parse('{"type": "record",')
    with pytest.raises(InvalidSchema, match="strin"):
        Schema.parse({"type": "record", "name": "R", "fields": [{"name": "x", "type": "strin"}]})
    with pytest.raises(InvalidSchema, match="first branch"):
        Schema.parse({"type": "record", "name": "R",
                      "fields": [{"name": "x", "type": ["null", "int"], "default": 3}]})
    with pytest.raises(InvalidSchema, match="neither Avro JSON nor an existing"):
        Schema.parse("no/such/file.avsc")


def test_normalized_form_ignores_whitespace_and_key_order() -> None:
    a = Schema.parse('{"name": "R", "type": "record", "fields": [{"type": {"type": "int"},'
                     ' "name": "x"}]}')
    b = Schema.parse('{"type":"record","name":"R","fields":[{"name":"x","type":"int"}]}')
    assert a == b and str(a) == str(b) == b.canonical
    c = Schema.parse({"type": "record", "name": "R",
                      "fields": [{"name": "x", "type": "int", "default": 0}]})
    assert c != b    # a default is part of the schema


def test_schema_from_avsc_file(tmp_path) -> None:
    path = tmp_path / "ride.avsc"
    path.write_text(V1.to_json(indent=2))
    assert Schema.parse(str(path)) == V1
    assert Schema.parse(path) == V1
