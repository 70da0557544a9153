"""The Schema Registry kept in the compacted _schemas topic."""
from __future__ import annotations

import json

import pytest

from streamkit.avro import Schema, SchemaRegistry
from streamkit.errors import (IncompatibleSchema, InvalidCompatibilityLevel, InvalidVersion,
                              SchemaNotFound, SubjectConfigNotFound, SubjectNotFound,
                              SubjectNotSoftDeleted, SubjectSoftDeleted, VersionNotFound,
                              VersionNotSoftDeleted, VersionSoftDeleted)
from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition


def ride(*extra: dict) -> Schema:
    return Schema.parse({"type": "record", "name": "Ride", "namespace": "test",
                         "fields": [{"name": "vendor_id", "type": "string"},
                                    {"name": "passenger_count", "type": "int"},
                                    *extra]})


V1 = ride()
V2 = ride({"name": "pu_location_id", "type": ["null", "long"], "default": None})
BREAKING = Schema.parse({"type": "record", "name": "Ride", "namespace": "test",
                         "fields": [{"name": "vendor_id", "type": "int"},
                                    {"name": "passenger_count", "type": "int"}]})
KEY = Schema.parse({"type": "record", "name": "RideKey",
                    "fields": [{"name": "vendor_id", "type": "int"}]})


def end_offset(reg: SchemaRegistry) -> int:
    return reg.broker.offsets(TopicPartition("_schemas", 0))[1]


def test_versions_from_one_and_global_ids(registry) -> None:
    a = registry.register("rides-value", V1)
    again = registry.register("rides-value", V1)
    b = registry.register("rides-value", V2)
    k = registry.register("rides-key", KEY)
    other = registry.register("archive-value", V1)   # same schema, other subject
    assert (a.version, a.id) == (1, 1) and again == a
    assert (b.version, b.id) == (2, 2)
    assert (k.version, k.id) == (1, 3)
    assert (other.version, other.id) == (1, 1)
    assert registry.subjects() == ["archive-value", "rides-key", "rides-value"]
    assert registry.versions("rides-value") == [1, 2]
    assert registry.get_version("rides-value", "latest").schema == V2
    assert registry.get_version("rides-value", 1).schema == V1
    assert registry.schema_by_id(3) == KEY
    assert registry.lookup("rides-value", V1).version == 1
    assert registry.subject_versions_of_id(1) == [("archive-value", 1), ("rides-value", 1)]


def test_whitespace_and_key_order_do_not_make_a_new_version(registry) -> None:
    registry.register("s", V1)
    spaced = json.dumps(json.loads(V1.canonical), indent=4, sort_keys=True)
    assert registry.register("s", spaced).version == 1


def test_incompatible_schema_is_refused_and_nothing_is_stored(registry) -> None:
    registry.register("rides-value", V1)
    before = end_offset(registry)
    with pytest.raises(IncompatibleSchema) as err:
        registry.register("rides-value", BREAKING)
    assert "Ride.vendor_id" in str(err.value) and "TYPE_MISMATCH" in str(err.value)
    assert "BACKWARD" in str(err.value) and err.value.error_code == 409
    assert err.value.messages and "version 1" in err.value.messages[0]
    assert end_offset(registry) == before
    assert registry.versions("rides-value") == [1]


def test_compatibility_global_and_per_subject(registry) -> None:
    assert registry.compatibility() == "BACKWARD"
    registry.register("a", V1)
    registry.register("b", V1)
    registry.set_compatibility("NONE", "a")
    assert registry.register("a", BREAKING).version == 2
    with pytest.raises(IncompatibleSchema):
        registry.register("b", BREAKING)
    with pytest.raises(SubjectConfigNotFound):
        registry.compatibility("b", default_to_global=False)
    registry.set_compatibility("forward")
    assert registry.compatibility("b") == "FORWARD"
    assert registry.delete_compatibility("a") == "NONE"
    assert registry.compatibility("a") == "FORWARD"
    with pytest.raises(InvalidCompatibilityLevel):
        registry.set_compatibility("SIDEWAYS")


def test_transitive_level_checks_all_live_versions(registry) -> None:
    def rec(*fields: dict) -> Schema:
        return Schema.parse({"type": "record", "name": "R", "fields": list(fields)})
    registry.set_compatibility("BACKWARD_TRANSITIVE", "t")
    registry.register("t", rec({"name": "a", "type": "int"}))
    registry.register("t", rec({"name": "c", "type": "string", "default": ""}))
    required_c = rec({"name": "c", "type": "string"})
    assert registry.check("t", required_c, "latest") == []     # fine against v2 alone
    with pytest.raises(IncompatibleSchema, match="version 1"):
        registry.register("t", required_c)
    # soft-deleted versions are no longer checked
    registry.delete_version("t", 1)
    assert registry.register("t", required_c).version == 3


def test_soft_and_permanent_delete(registry) -> None:
    registry.register("rides-value", V1)
    registry.register("rides-value", V2)
    with pytest.raises(VersionNotSoftDeleted):
        registry.delete_version("rides-value", 2, permanent=True)
    assert registry.delete_version("rides-value", 2) == 2
    with pytest.raises(VersionSoftDeleted):
        registry.delete_version("rides-value", 2)
    assert registry.versions("rides-value") == [1]
    assert registry.versions("rides-value", deleted=True) == [1, 2]
    assert registry.schema_by_id(2) == V2          # old records stay readable
    with pytest.raises(VersionNotFound):
        registry.get_version("rides-value", 2)
    assert registry.get_version("rides-value", 2, deleted=True).deleted
    # re-registering takes the next version number, keeps the id
    again = registry.register("rides-value", V2)
    assert (again.version, again.id) == (3, 2)

    with pytest.raises(SubjectNotSoftDeleted):
        registry.delete_subject("rides-value", permanent=True)
    assert registry.delete_subject("rides-value") == [1, 3]
    assert registry.subjects() == [] and registry.subjects(deleted=True) == ["rides-value"]
    with pytest.raises(SubjectNotFound):
        registry.versions("rides-value")
    with pytest.raises(SubjectSoftDeleted):
        registry.delete_subject("rides-value")
    assert registry.delete_subject("rides-value", permanent=True) == [1, 2, 3]
    assert registry.subjects(deleted=True) == []
    with pytest.raises(SchemaNotFound):
        registry.schema_by_id(1)
    # ids are never reused
    assert registry.register("rides-value", KEY).id == 3


def test_bad_versions(registry) -> None:
    registry.register("s", V1)
    for bad in ("0", "two", 2**31, -2):
        with pytest.raises(InvalidVersion):
            registry.get_version("s", bad)
    assert registry.get_version("s", -1).version == 1
    with pytest.raises(VersionNotFound):
        registry.get_version("s", 5)
    with pytest.raises(SubjectNotFound):
        registry.get_version("nope", 1)


def test_state_is_replayed_from_the_log_on_restart(tmp_path) -> None:
    url = f"log://{tmp_path}/log"
    with SchemaRegistry(connect(url), owns_broker=True) as reg:
        reg.register("rides-value", V1)
        reg.register("rides-value", V2)
        reg.set_compatibility("FULL", "rides-value")
        reg.delete_version("rides-value", 1)
    with SchemaRegistry(connect(url), owns_broker=True) as reg:
        assert reg.versions("rides-value") == [2]
        assert reg.compatibility("rides-value") == "FULL"
        assert reg.schema_by_id(1) == V1
        assert reg.register("other", KEY).id == 3
    info = connect(url).describe_topic("_schemas")
    assert info.partitions == 1 and info.config["cleanup.policy"] == "compact"


def test_two_registries_on_one_broker_see_each_other(broker) -> None:
    a, b = SchemaRegistry(broker), SchemaRegistry(broker)
    a.register("x", V1)
    assert b.register("x", V2).version == 2
    assert a.get_version("x").schema == V2
    assert b.register("y", KEY).id == a.register("y", KEY).id == 3


def test_first_claim_in_the_log_wins(broker) -> None:
    # A process that lost a race appended records claiming a taken version and a taken
    # id: every replay ignores them, so all processes agree on the winner.
    reg = SchemaRegistry(broker)
    reg.register("x", V1)

    def claim(subject: str, version: int, schema_id: int, schema: Schema) -> None:
        key = json.dumps({"keytype": "SCHEMA", "subject": subject, "version": version},
                         sort_keys=True, separators=(",", ":")).encode()
        value = json.dumps({"subject": subject, "version": version, "id": schema_id,
                            "schema": schema.canonical, "deleted": False}).encode()
        broker.produce("_schemas", [OutgoingRecord(key, value)])

    claim("x", 1, 2, V2)          # version 1 of x is taken
    claim("y", 1, 1, KEY)         # id 1 is taken by V1
    fresh = SchemaRegistry(broker)
    for r in (reg, fresh):
        assert r.get_version("x", 1).schema == V1
        assert r.schema_by_id(1) == V1
        assert r.subjects() == ["x"]
    assert fresh.register("y", KEY).id == 2


def test_compacted_topic_keeps_the_registry(tmp_path) -> None:
    url = f"log://{tmp_path}/log"
    broker = connect(url, config=None)
    reg = SchemaRegistry(broker)
    reg.register("x", V1)
    reg.register("x", V2)
    reg.delete_subject("x")
    reg.register("y", KEY)
    broker.cleanup("_schemas")
    fresh = SchemaRegistry(broker)
    assert fresh.subjects() == ["y"] and fresh.subjects(deleted=True) == ["x", "y"]
    assert fresh.schema_by_id(2) == V2


def test_ids_are_not_reused_after_permanent_delete_and_compaction(tmp_path) -> None:
    broker = connect(f"log://{tmp_path}/log")
    reg = SchemaRegistry(broker)
    reg.register("x", V1)
    reg.register("y", KEY)                  # id 2, the highest
    reg.delete_subject("y")
    reg.delete_subject("y", permanent=True)
    broker.cleanup("_schemas")
    fresh = SchemaRegistry(broker)
    with pytest.raises(SchemaNotFound):
        fresh.schema_by_id(2)
    assert fresh.register("z", V2).id == 3
