"""Topic names and topic configs of the embedded log, checked by Kafka's rules."""
from __future__ import annotations

from collections.abc import Mapping

from streamkit import names
from streamkit.errors import InvalidConfig, InvalidTopicName

#: Names the log keeps for itself inside its root directory.
RESERVED_NAMES = frozenset({"__consumer_groups", "__transactions", "__trash", "__quarantine"})

DEFAULTS: dict[str, str] = {
    "cleanup.policy": "delete",
    "retention.ms": "604800000",          # 7 days, as Kafka
    "retention.bytes": "-1",
    "segment.bytes": "1073741824",        # 1 GiB, as Kafka
    "segment.ms": "604800000",            # 7 days, as Kafka
    "message.timestamp.type": "CreateTime",
    "min.cleanable.dirty.ratio": "0.5",
}

#: Kafka topic configs the embedded log accepts and stores but does not act on.
ACCEPTED_UNUSED = frozenset({
    "compression.type", "delete.retention.ms", "file.delete.delay.ms", "flush.messages",
    "flush.ms", "index.interval.bytes", "local.retention.bytes", "local.retention.ms",
    "max.compaction.lag.ms", "max.message.bytes", "message.downconversion.enable",
    "message.format.version", "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms", "message.timestamp.difference.max.ms",
    "min.compaction.lag.ms", "min.insync.replicas",
    "preallocate", "remote.storage.enable", "segment.index.bytes", "segment.jitter.ms",
    "unclean.leader.election.enable",
    "follower.replication.throttled.replicas", "leader.replication.throttled.replicas",
})

_POLICIES = {"delete": "delete", "compact": "compact", "compact,delete": "compact,delete",
             "delete,compact": "compact,delete"}


def check_topic_name(name: object) -> str:
    """Return ``name`` if Kafka would accept it as a topic name (the rule is in
    ``streamkit.names``) and the embedded log does not keep it for itself, else raise."""
    name = names.check_topic_name(name)
    if name in RESERVED_NAMES:
        raise InvalidTopicName(f"invalid topic name {name!r}: reserved by the embedded log")
    return name


def check_replication_factor(replication_factor: int | str) -> None:
    """The embedded log keeps one copy; more needs a Kafka cluster. (A number, or
    its text in a topic config.)"""
    try:
        factor = int(replication_factor)
    except (TypeError, ValueError):
        raise InvalidConfig(f"replication.factor={replication_factor!r} is not a number") \
            from None
    if factor > 1:
        raise InvalidConfig(
            f"replication.factor={factor}: the embedded log (log://, memory://) keeps one "
            "copy on one machine; use a Kafka cluster (kafka://host:port) for replication")
    if factor < 1 and factor != -1:
        raise InvalidConfig(f"replication.factor={factor} must be at least 1")


def _int(key: str, value: str, minimum: int) -> str:
    try:
        number = int(value)
    except ValueError:
        raise InvalidConfig(f"topic config {key}={value!r} is not an integer") from None
    if number < minimum:
        raise InvalidConfig(f"topic config {key}={value!r} must be >= {minimum}")
    return str(number)


def check_topic_config(config: Mapping[str, object] | None) -> dict[str, str]:
    """Validate and normalise a topic config (values become strings)."""
    out: dict[str, str] = {}
    for key, raw in (config or {}).items():
        value = str(raw).strip() if not isinstance(raw, bool) else str(raw).lower()
        if key == "replication.factor":
            check_replication_factor(value)
            continue
        if key in ("retention.ms", "retention.bytes"):
            out[key] = _int(key, value, -1)
        elif key in ("segment.bytes", "segment.ms"):
            out[key] = _int(key, value, 1)
        elif key == "cleanup.policy":
            policy = _POLICIES.get(value.replace(" ", ""))
            if policy is None:
                raise InvalidConfig(f"topic config cleanup.policy={value!r}: use delete, "
                                    "compact or compact,delete")
            out[key] = policy
        elif key == "min.cleanable.dirty.ratio":
            try:
                ratio = float(value)
            except ValueError:
                ratio = -1.0
            if not 0.0 <= ratio <= 1.0:
                raise InvalidConfig(f"topic config min.cleanable.dirty.ratio={value!r} "
                                    "must be a number from 0 to 1")
            out[key] = value
        elif key == "message.timestamp.type":
            if value not in ("CreateTime", "LogAppendTime"):
                raise InvalidConfig(f"topic config message.timestamp.type={value!r}: use "
                                    "CreateTime or LogAppendTime")
            out[key] = value
        elif key in ACCEPTED_UNUSED:
            out[key] = value
        else:
            raise InvalidConfig(f"unknown topic config {key}={value!r}")
    return out


class TopicConfig:
    """A topic's config with the values the log acts on parsed once."""

    __slots__ = ("raw", "retention_ms", "retention_bytes", "segment_bytes", "compact",
                 "delete", "log_append_time", "dirty_ratio", "segment_ms")

    def __init__(self, raw: dict[str, str]) -> None:
        merged = {**DEFAULTS, **raw}
        self.raw = raw
        self.retention_ms = int(merged["retention.ms"])
        self.retention_bytes = int(merged["retention.bytes"])
        self.segment_bytes = int(merged["segment.bytes"])
        self.segment_ms = int(merged["segment.ms"])
        policy = merged["cleanup.policy"]
        self.compact = "compact" in policy
        self.delete = "delete" in policy
        self.log_append_time = merged["message.timestamp.type"] == "LogAppendTime"
        self.dirty_ratio = float(merged["min.cleanable.dirty.ratio"])

    def full(self) -> dict[str, str]:
        """Every config the log acts on, defaults filled in, plus stored extras."""
        return {**DEFAULTS, **self.raw}
