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


class CorruptRecord(BrokerError):
    """A record in the middle of a log segment failed its CRC check.

    ``topic``, ``partition`` and ``offset`` say where.
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


class ValidationError(StreamkitError, ValueError):
    """A Record field with a value of the wrong type. Names record, field and value."""


class ImproperlyConfigured(StreamkitError):
    """An App, topic or table set up in a way that cannot work."""
