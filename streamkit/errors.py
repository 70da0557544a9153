"""Exceptions a streamkit user may catch. Each names what was wrong and where."""
from __future__ import annotations


class StreamkitError(Exception):
    """Base class of every streamkit error."""


class BrokerError(StreamkitError):
    """The broker refused or failed an operation."""


class InvalidBrokerURL(BrokerError):
    """A broker URL streamkit cannot use."""


class InvalidTopicName(BrokerError):
    """A topic name outside Kafka's rule: [a-zA-Z0-9._-], 1-249 chars, not '.' or '..'."""


class UnknownTopic(BrokerError):
    """The topic does not exist (and was not to be created)."""


class TopicExists(BrokerError):
    """Creating a topic that already exists."""


class InvalidConfig(BrokerError):
    """A topic or client setting with a value streamkit does not accept."""


class CorruptLog(BrokerError):
    """Files of the embedded log are damaged or missing (a topic's ``topic.json``, a
    partition's segments). ``streamkit log check`` shows the damage."""


class CorruptRecord(CorruptLog):
    """A record batch of a log segment is damaged (a bad header, CRC or body), before
    the point up to which writes are known to have completed.

    ``topic``, ``partition`` and ``offset`` say where: ``offset`` is the first offset
    that cannot be read.
    """

    def __init__(self, message: str, topic: str, partition: int, offset: int) -> None:
        super().__init__(message)
        self.topic = topic
        self.partition = partition
        self.offset = offset


class OffsetOutOfRange(BrokerError):
    """A fetch at an offset the partition does not hold (deleted by retention, or past
    the end)."""


class KafkaTimeoutError(BrokerError):
    """A produce or metadata wait took longer than its timeout."""


class DecodeError(StreamkitError):
    """A message that could not be decoded into its topic's key or value type."""

    # set by ``Serde``: the exception of the codec or converter, and the payload
    cause: BaseException
    data: bytes


class ValidationError(StreamkitError, ValueError):
    """A Record field with a value of the wrong type. Names record, field and value."""

    # set by the Record that refused the value
    record: str
    field: str
    value: object


class ImproperlyConfigured(StreamkitError):
    """An App, topic or table set up in a way that cannot work."""


class StoreLocked(StreamkitError):
    """A table store already opened by another live worker process (RocksDB allows one
    process per store). ``path`` names the store."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


# -- Schema Registry (streamkit.avro). ``http_status`` and ``error_code`` are the ones
# Confluent's Schema Registry answers with, so REST clients see the same errors.

class SchemaRegistryError(StreamkitError):
    """A Schema Registry operation that failed; ``error_code`` is Confluent's code."""

    http_status = 500
    error_code = 50001

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidSchema(SchemaRegistryError):
    """A schema that is not valid Avro (bad JSON, unknown type, bad default...)."""

    http_status, error_code = 422, 42201


class InvalidVersion(SchemaRegistryError):
    """A version that is neither ``latest`` nor an integer from 1 to 2**31-1."""

    http_status, error_code = 422, 42202


class InvalidCompatibilityLevel(SchemaRegistryError):
    """A compatibility level outside NONE, BACKWARD[_TRANSITIVE], FORWARD[...], FULL[...]."""

    http_status, error_code = 422, 42203


class IncompatibleSchema(SchemaRegistryError):
    """A schema refused by the subject's compatibility level; ``messages`` says which
    field breaks which rule against which version."""

    http_status, error_code = 409, 409

    def __init__(self, message: str, messages: list[str] | None = None) -> None:
        super().__init__(message)
        self.messages = list(messages or [])


class SubjectNotFound(SchemaRegistryError):
    http_status, error_code = 404, 40401


class VersionNotFound(SchemaRegistryError):
    http_status, error_code = 404, 40402


class SchemaNotFound(SchemaRegistryError):
    http_status, error_code = 404, 40403


class SubjectSoftDeleted(SchemaRegistryError):
    """Soft-deleting a subject that is already soft-deleted."""

    http_status, error_code = 404, 40404


class SubjectNotSoftDeleted(SchemaRegistryError):
    """A permanent delete of a subject that was not soft-deleted first."""

    http_status, error_code = 404, 40405


class VersionSoftDeleted(SchemaRegistryError):
    """Soft-deleting a version that is already soft-deleted."""

    http_status, error_code = 404, 40406


class VersionNotSoftDeleted(SchemaRegistryError):
    """A permanent delete of a version that was not soft-deleted first."""

    http_status, error_code = 404, 40407


class SubjectConfigNotFound(SchemaRegistryError):
    """A subject with no compatibility level of its own (asked without defaultToGlobal)."""

    http_status, error_code = 404, 40408


class UnknownCodec(ImproperlyConfigured, KeyError):
    """A serializer name that is not registered. Names the known ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CommitFailed(BrokerError):
    """A group commit the coordinator refused because the group is rebalancing (or this
    member was dropped from it). Nothing is lost: the records are delivered again to
    whoever owns the partition next. Callers may log it and go on."""


class NoCurrentEvent(StreamkitError, RuntimeError):
    """A read that needs the event an agent is processing (a windowed table's
    ``.current()``, ``.value()``, ``.delta()``) was made outside one: in a timer, a web
    view or a task. A ``RuntimeError``, as Faust's "Operation outside of stream
    iteration"."""


class IllegalStateError(StreamkitError):
    """A client call that its state does not allow, as kafka-python's error of the same
    name: ``Consumer.assign()`` after ``subscribe()`` (or the other way round), or a
    poll with neither."""


class ProducerFenced(BrokerError):
    """A newer producer with the same transactional id took over (or the transaction
    coordinator aborted this one's transaction): this producer can no longer write
    transactionally or commit. Kafka's ``ProducerFencedException``."""


class PartitionsLost(CommitFailed):
    """Offsets of partitions this member lost: the group removed it (its session
    expired, as in a long pause) after it read them, so their new owner processes
    those events again and these offsets may not be committed."""


class InvalidTxnState(BrokerError):
    """A transactional call out of order: ``begin_transaction`` while one is open, a
    send or ``commit_transaction`` with none open, before ``init_transactions``."""


class TransactionAborted(BrokerError):
    """The transaction was aborted (a fenced member, a timeout): nothing of it became
    visible; begin a new one and redo its work."""
